"""Loading the settings: the chosen environment's values overlaid with `TODOSCALE_*` variables.

The app, the servers (`deploy/servers.py`, `deploy/gunicorn.conf.py`), the CLI and the Celery
worker all read their settings through `load_config`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from todoscale.config.settings import Settings

# Flask's and its extensions' settings that no variable changes.
FIXED: dict[str, Any] = {
    "HSTS": False,
    "JSON_SORT_KEYS": False,
    "SESSION_COOKIE_NAME": "todoscale_session",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    # The web and auth blueprints check CSRF on their own routes; the API uses bearer tokens.
    "WTF_CSRF_CHECK_DEFAULT": False,
    # A form token lives as long as the server-side session it belongs to.
    "WTF_CSRF_TIME_LIMIT": None,
    "BABEL_DEFAULT_LOCALE": "en",
    "BABEL_DEFAULT_TIMEZONE": "UTC",
}

# What each environment changes from the defaults above; a variable still wins over these.
ENVIRONMENTS: dict[str, dict[str, Any]] = {
    # The embedded default: SQLite, generated secret key, nothing else to set up.
    "development": {},
    # For the test suite: cheap password hashing, no request log noise.
    "testing": {
        "TESTING": True,
        "SECRET_KEY": "testing-secret-key",
        "REQUEST_LOG": False,
        # Live updates are the realtime tests' business: they build apps that emit or serve.
        "REALTIME": "off",
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_KIB": 64,
        # The suite's many registrations and logins would trip the limits; the limit tests
        # turn them on in apps of their own.
        "RATE_LIMITS_ENABLED": False,
    },
    # Production: a secret key must be given; HSTS and the `__Host-` cookie on.
    "production": {
        "HSTS": True,
        "METRICS_LOOPBACK": False,
        "SESSION_COOKIE_SECURE": True,
        "INSTANCE_ID": "",  # no X-Instance-ID unless set: a host name and pid help an attacker
    },
}

# Each setting's variable, by its config key.
VARIABLES: dict[str, str] = {
    key: str(field.validation_alias) for key, field in Settings.model_fields.items()
}
_NAMES = tuple(VARIABLES.values())
_ENV = VARIABLES["ENV_NAME"]


class ConfigurationError(RuntimeError):
    """A setting is missing or malformed; the message says how to fix it."""


def load_config(
    environ: Mapping[str, str] | None = None, env_name: str | None = None
) -> dict[str, Any]:
    """Return the settings of the chosen environment overlaid with `TODOSCALE_*` variables."""
    environ = os.environ if environ is None else environ
    name = env_name or environ.get(_ENV, "development")
    if name not in ENVIRONMENTS:
        raise ConfigurationError(
            f"{_ENV}={name!r} is not an environment; use one of {', '.join(ENVIRONMENTS)}."
        )
    chosen = ENVIRONMENTS[name]
    given = {VARIABLES[key]: value for key, value in chosen.items() if key in VARIABLES}
    given.update((variable, environ[variable]) for variable in _NAMES if variable in environ)
    given[_ENV] = name
    try:
        settings = Settings.model_validate(given)
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from exc
    return {**FIXED, **chosen, **dict(settings)}


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]  # the variable's name is the error's location
    variable = ".".join(str(part) for part in error["loc"])
    cause = error.get("ctx", {}).get("error")  # a ValueError of our own parsers
    reason = str(cause) if cause else f"{error['msg']}, got {error['input']!r}"
    return f"{variable} is malformed: {reason}"
