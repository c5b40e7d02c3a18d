"""deploy/compose.yaml and deploy/Dockerfile name only commands, settings and files that exist.

No Docker engine runs here, so these files are checked by reading them: every `todoscale`
command line must parse with the real CLI, every TODOSCALE_* variable must be a setting,
every file they mount or copy must be in the project.
"""

from __future__ import annotations

import configparser
import contextlib
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from flask import Flask
from flask.cli import ScriptInfo

from tests.conftest import PROJECT_ROOT
from todoscale.cli import cli
from todoscale.config import SETTINGS
from todoscale.deploy.cluster import Plan, supervisord_config

DEPLOY = PROJECT_ROOT / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
KNOWN = {setting.env for setting in SETTINGS}
APP_SERVICES = ["migrate", "app1", "app2", "socketio1", "socketio2"]
SUPERVISOR = configparser.RawConfigParser()
SUPERVISOR.read_string((DEPLOY / "supervisor" / "todoscale.conf").read_text())
CLUSTER = configparser.RawConfigParser()
CLUSTER.read_string(
    supervisord_config(Plan(instance_path=Path("/nowhere"), port=8080, instances=2), nginx="nginx")
)


def celery_args(command: str | list[str]) -> list[str]:
    """A Celery command line from `-A`, whatever runs it (celery, python -m celery)."""
    argv = shlex.split(command) if isinstance(command, str) else command
    return argv[argv.index("-A") :]


@pytest.fixture(autouse=True)
def _script_info(app: Flask) -> Iterator[None]:
    """The app the CLI finds its plugin commands (`db`) on."""
    global SCRIPT_INFO
    SCRIPT_INFO = ScriptInfo(create_app=lambda: app)
    yield
    SCRIPT_INFO = None


SCRIPT_INFO: ScriptInfo | None = None


def check_command(argv: list[str]) -> None:
    """Parse a `todoscale ...` command line with the real CLI (without running it)."""
    assert argv[0] == "todoscale", argv
    # Every context is closed on the way out: looking up `db` pushes an app context onto
    # the outermost one, and a leaked app context would be shared by later tests' requests.
    with contextlib.ExitStack() as stack:
        ctx = stack.enter_context(click.Context(cli, info_name="todoscale", obj=SCRIPT_INFO))
        command: click.Command = cli
        args = argv[1:]
        while isinstance(command, click.Group) and args:
            sub = command.get_command(ctx, args[0])
            assert sub is not None, f"no command {args[0]!r} in {argv}"
            command, args = sub, args[1:]
            ctx = stack.enter_context(click.Context(command, parent=ctx, info_name=sub.name))
        command.parse_args(ctx, list(args))  # raises on an unknown option or a bad value


def variables(text: str) -> set[str]:
    return set(re.findall(r"\bTODOSCALE_[A-Z0-9_]+", text))


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_app_service_runs_a_real_todoscale_command(name):
    check_command(COMPOSE["services"][name]["command"])


def test_the_command_checker_rejects_what_does_not_exist():
    with pytest.raises(AssertionError):
        check_command(["todoscale", "no-such-command"])
    with pytest.raises(click.UsageError):
        check_command(["todoscale", "serve", "--server", "uwsgi"])


def test_every_todoscale_variable_is_a_setting():
    used = variables((DEPLOY / "compose.yaml").read_text()) | variables(DOCKERFILE)

    assert used, "the files set no TODOSCALE_* variable at all"
    assert used <= KNOWN, f"not settings: {sorted(used - KNOWN)}"


def test_worker_and_beat_run_the_clusters_celery_commands():
    for name in ("worker", "beat"):
        cluster = celery_args(CLUSTER[f"program:{name}"]["command"])
        compose = celery_args(COMPOSE["services"][name]["command"])
        supervisor = celery_args(SUPERVISOR[f"program:{name}"]["command"])
        # The same command and options; beat's schedule file lives where each keeps state.
        end = -1 if name == "beat" else None
        assert compose[:end] == supervisor[:end] == cluster[:end], name
    assert COMPOSE["services"]["beat"].get("deploy", {}).get("replicas", 1) == 1


def test_the_socketio_services_match_the_local_cluster():
    for number in (1, 2):
        service = COMPOSE["services"][f"socketio{number}"]
        assert service["command"] == ["todoscale", "serve", "--socketio"]
        assert service["environment"]["TODOSCALE_INSTANCE_ID"] == f"socketio{number}"
        assert CLUSTER[f"program:socketio{number}"]["command"].endswith(
            "todoscale.cli serve --socketio"
        )
    nginx_site = (DEPLOY / "nginx" / "compose.conf").read_text()
    assert "server socketio1:8000;\n    server socketio2:8000;" in nginx_site


def test_the_supervisor_example_runs_real_commands_and_settings():
    programs = [name for name in SUPERVISOR.sections() if name.startswith("program:")]
    assert SUPERVISOR["group:todoscale"]["programs"].split(",") == [
        name.split(":")[1] for name in programs
    ]
    for name in programs:
        section = SUPERVISOR[name]
        argv = shlex.split(section["command"])
        if argv[0].endswith("/todoscale"):
            check_command(["todoscale", *argv[1:]])
        assert variables(section["environment"]) <= KNOWN, name
        assert section["killasgroup"] == "true"
        assert section["stopasgroup"] == ("false" if name == "program:worker" else "true")


def test_the_app_instances_match_the_local_cluster():
    cluster = supervisord_config(
        Plan(instance_path=Path("/nowhere"), port=8080, instances=2), nginx="nginx"
    )
    for number in (1, 2):
        service = COMPOSE["services"][f"app{number}"]
        assert service["environment"]["TODOSCALE_INSTANCE_ID"] == f"app{number}"
        assert service["environment"]["TODOSCALE_TRUSTED_PROXIES"] == "1"
        # The cluster runs the same subcommand: `serve --server <the server>`.
        assert "todoscale.cli serve --server" in cluster
        assert f'TODOSCALE_INSTANCE_ID="app{number}"' in cluster
    assert {"postgres", "redis", "nginx", "app1", "app2"} <= set(COMPOSE["services"])


def test_every_file_the_compose_file_names_exists():
    for name, service in COMPOSE["services"].items():
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"


def test_the_dockerfile_copies_real_files_and_runs_a_real_command():
    copies = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, flags=re.MULTILINE)
    assert copies
    for sources in copies:
        for source in sources.split():
            assert (PROJECT_ROOT / source).exists(), source
    stages = re.findall(r"^FROM \S+", DOCKERFILE, flags=re.MULTILINE)
    assert len(stages) >= 2, "multi-stage"
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, flags=re.MULTILINE), "non-root"
    cmd = re.search(r"^CMD (.+)$", DOCKERFILE, flags=re.MULTILINE)
    assert cmd
    check_command(shlex.split(cmd.group(1).replace('", "', " ").strip('[]"')))
