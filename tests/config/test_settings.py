"""The declaration: each setting read from its own variable, by every entry point alike."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from todoscale.config import ENVIRONMENTS, SETTINGS, ConfigurationError, Settings, load_config
from todoscale.deploy import servers

pytestmark = pytest.mark.database_free  # settings and their files, no database

# A value of each declared type, as a variable spells it, and what it reads as (for a
# boolean, the opposite of its default).
SAMPLES: dict[str, tuple[str, Any]] = {
    "int": ("7", 7),
    "float": ("0.5", 0.5),
    "str": ("given", "given"),
    "list": ("a, .b,,", ["a", ".b"]),
}


def _sample(key: str) -> tuple[str, Any]:
    field = Settings.model_fields[key]
    annotation = str(field.annotation)
    if "bool" in annotation:
        return ("no", False) if field.default else ("yes", True)
    for kind in ("list", "float", "int"):
        if kind in annotation:
            return SAMPLES[kind]
    return SAMPLES["str"]


@pytest.mark.parametrize(
    "setting", [s for s in SETTINGS if s.key != "ENV_NAME"], ids=lambda s: s.env
)
def test_every_setting_is_read_from_its_own_variable(setting):
    raw, expected = _sample(setting.key)

    values = load_config({setting.env: raw})

    assert values[setting.key] == expected
    assert load_config({})[setting.key] != expected  # the variable changed it


def test_a_variable_wins_over_its_environments_value():
    assert load_config({"TODOSCALE_ENV": "testing"})["REALTIME"] == "off"
    assert load_config({"TODOSCALE_ENV": "testing", "TODOSCALE_REALTIME": "emit"})["REALTIME"] == (
        "emit"
    )
    secure = {"TODOSCALE_ENV": "production", "TODOSCALE_SESSION_COOKIE_SECURE": "0"}
    assert load_config(secure)["SESSION_COOKIE_SECURE"] is False


def test_environments_change_only_declared_settings_or_flask_constants():
    declared = set(Settings.model_fields)
    constants = set(load_config({})) - declared
    for name, changes in ENVIRONMENTS.items():
        assert set(changes) <= declared | constants | {"TESTING"}, name


def test_a_malformed_server_setting_names_its_variable():
    with pytest.raises(ConfigurationError, match="TODOSCALE_WORKERS is malformed"):
        servers.granian_argv({"TODOSCALE_WORKERS": "many"}, log_dir=None)  # type: ignore[arg-type]


def _start(code: str, tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TODOSCALE_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "TODOSCALE_INSTANCE_PATH": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "code",
    [
        "from todoscale.cli import main; import sys; sys.argv = ['todoscale', 'seed']; main()",
        "import sys; sys.argv = ['celery', 'worker']; import todoscale.worker",
        f"import runpy; runpy.run_path({str(servers.GUNICORN_CONF)!r}, run_name='__config__')",
    ],
    ids=["cli", "celery-worker", "gunicorn-master"],
)
def test_a_malformed_setting_stops_each_entry_point_with_its_name_not_a_traceback(code, tmp_path):
    done = _start(code, tmp_path, TODOSCALE_THREADS="several")

    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "todoscale: TODOSCALE_THREADS is malformed: Input should be a valid integer, "
        "unable to parse string as an integer, got 'several'"
    )
    assert "Traceback" not in done.stderr
