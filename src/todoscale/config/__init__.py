"""Configuration: every `TODOSCALE_*` setting declared once (`settings.Settings`), loaded for
the app, the servers, the CLI and the worker alike (`loading.load_config`), and rendered into
the README's configuration table (`table`)."""

from todoscale.config.files import broker_url, ensure_secret_key, instance_folder, metrics_root
from todoscale.config.loading import ENVIRONMENTS, VARIABLES, ConfigurationError, load_config
from todoscale.config.settings import Settings
from todoscale.config.table import SETTINGS, Setting

__all__ = [
    "ENVIRONMENTS",
    "SETTINGS",
    "VARIABLES",
    "ConfigurationError",
    "Setting",
    "Settings",
    "broker_url",
    "ensure_secret_key",
    "instance_folder",
    "load_config",
    "metrics_root",
]
