"""`todoscale serve`: the server command lines, gunicorn's settings, granian really serving."""

from __future__ import annotations

import itertools
import json
import os
import runpy
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.deploy.helpers import free_port_run, stop_group, wait_for
from todoscale.cli import cli
from todoscale.deploy import servers
from todoscale.ops.logs import JsonFormatter

pytestmark = pytest.mark.database_free


def test_bind_address_comes_from_todoscale_bind_then_port():
    assert servers.bind_address({"TODOSCALE_BIND": "0.0.0.0:9000"}) == ("0.0.0.0", 9000)
    assert servers.bind_address({"PORT": "8123"}) == ("127.0.0.1", 8123)
    assert servers.bind_address({}) == ("127.0.0.1", 8000)
    assert servers.bind_address({"TODOSCALE_BIND": "[::1]:9000"}) == ("::1", 9000)
    with pytest.raises(ValueError, match="host:port"):
        servers.bind_address({"TODOSCALE_BIND": "9000"})


def test_granian_runs_wsgi_with_the_configured_workers_and_threads(tmp_path):
    env = {"TODOSCALE_WORKERS": "3", "TODOSCALE_BLOCKING_THREADS": "6", "PORT": "8111"}
    argv = servers.server_argv("granian", env, tmp_path)

    # granian, its workers forked after the app's modules are imported (todoscale.prefork).
    assert argv[1:3] == ["-m", "todoscale.prefork"]
    pairs = dict(itertools.pairwise(argv))  # each option with the value after it
    assert pairs["--interface"] == "wsgi"
    assert pairs["--workers"] == "3" and pairs["--blocking-threads"] == "6"
    assert pairs["--port"] == "8111" and pairs["--host"] == "127.0.0.1"
    assert "--no-access-log" in argv and argv[-1] == "todoscale.wsgi:app"
    logging_config = json.loads(Path(pairs["--log-config"]).read_text())
    assert logging_config["formatters"]["json"]["()"] == "todoscale.ops.logs.JsonFormatter"


def test_granian_defaults_to_one_worker_per_core_and_four_threads(tmp_path):
    argv = servers.server_argv("granian", {}, tmp_path)

    assert argv[argv.index("--workers") + 1] == str(os.cpu_count())
    assert argv[argv.index("--blocking-threads") + 1] == "4"


def test_unknown_server_is_refused(runner):
    result = runner.invoke(cli, ["serve", "--server", "uwsgi"])

    assert result.exit_code != 0
    assert "granian" in result.output and "gunicorn" in result.output


def _gunicorn_settings(monkeypatch, **env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return runpy.run_path(str(servers.GUNICORN_CONF))


def test_gunicorn_defaults_to_two_workers_per_core_plus_one(monkeypatch):
    monkeypatch.delenv("TODOSCALE_WORKERS", raising=False)
    settings = _gunicorn_settings(monkeypatch, PORT="8222")

    assert settings["workers"] == 2 * os.cpu_count() + 1
    assert settings["bind"] == "127.0.0.1:8222"
    assert settings["worker_class"] == "sync"
    assert settings["graceful_timeout"] > 0
    assert settings["max_requests"] > 0 and settings["max_requests_jitter"] > 0


def test_gunicorn_worker_class_and_threads_are_configurable(monkeypatch):
    settings = _gunicorn_settings(
        monkeypatch,
        TODOSCALE_WORKER_CLASS="gthread",
        TODOSCALE_THREADS="8",
        TODOSCALE_WORKERS="2",
        TODOSCALE_BIND="[::1]:9001",
    )

    assert (settings["worker_class"], settings["threads"], settings["workers"]) == (
        "gthread",
        8,
        2,
    )
    assert settings["bind"] == "[::1]:9001"


def test_gunicorn_logs_json_and_leaves_the_request_line_to_the_app(monkeypatch):
    settings = _gunicorn_settings(monkeypatch)
    formatter = settings["logconfig_dict"]["formatters"]["json"]["()"]

    assert formatter == f"{JsonFormatter.__module__}.{JsonFormatter.__name__}"
    assert settings["accesslog"] is None
    assert settings["logger_class"] is servers.GunicornLogger


def test_the_socketio_service_is_one_gevent_worker_never_recycled():
    argv = servers.socketio_argv("127.0.0.1:8100")
    pairs = dict(itertools.pairwise(argv))

    # gunicorn's gevent worker without its master (tests/realtime/test_lone_worker.py).
    assert argv[1:3] == ["-m", "todoscale.deploy.lone_worker"]
    assert argv[-1] == "todoscale.wsgi:app"
    assert pairs["--config"] == str(servers.GUNICORN_CONF)
    assert (pairs["--worker-class"], pairs["--workers"]) == ("gevent", "1")
    assert pairs["--bind"] == "127.0.0.1:8100" and pairs["--max-requests"] == "0"
    assert servers.SOCKETIO_ENV["TODOSCALE_REALTIME"] == "serve"
    assert servers.bind_spec({"TODOSCALE_BIND": "[::1]:9000"}) == "[::1]:9000"


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--worker-class", "gevent"], {}),
        (["-k", "gevent"], {}),
        ([], {"TODOSCALE_WORKER_CLASS": "gevent"}),
    ],
    ids=["--worker-class", "-k", "variable"],
)
def test_gunicorn_patches_gevent_before_the_app_package_loads(argv, env):
    # In a fresh interpreter that has imported what gunicorn imports before it reads its
    # configuration file: patching later than the app's imports would warn (an error here).
    script = (
        "import runpy, sys, warnings; warnings.simplefilter('error');"
        "import gunicorn.app.wsgiapp;"
        f"sys.argv = ['gunicorn', *{argv!r}, 'todoscale.wsgi:app'];"
        f"settings = runpy.run_path({str(servers.GUNICORN_CONF)!r});"
        "from gevent import monkey;"
        "print(settings['worker_class'], monkey.is_module_patched('socket'),"
        " settings['worker_connections'], settings['post_request'].__name__)"
    )
    clean = {k: v for k, v in os.environ.items() if k != "TODOSCALE_WORKER_CLASS"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    # ... with room for thousands of WebSockets, yielding after each request (fairness).
    assert done.stdout.split() == ["gevent", "True", "10000", "post_request"]


def _serve(server: str, tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TODOSCALE_INSTANCE_PATH": str(tmp_path),
        "TODOSCALE_ENV": "development",
        "TODOSCALE_WORKERS": "1",
        "PORT": str(port),
    }
    argv = [sys.executable, "-m", "todoscale.cli", "serve", "--server", server]
    with (tmp_path / f"{server}.log").open("wb") as log:
        return subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def test_granian_serves_and_every_log_line_is_json(tmp_path):
    # gunicorn's turn is the cluster test's (tests/deploy/test_cluster.py).
    server = "granian"
    port = free_port_run(1)
    proc = _serve(server, tmp_path, port)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc, timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
            assert response.headers["X-Instance-ID"]
    finally:
        stop_group(proc, signal.SIGTERM)
    time.sleep(0.2)
    lines = (tmp_path / f"{server}.log").read_text().splitlines()
    # Every line parses, but Python's warnings (the warnings module prints, it does not log).
    records = [json.loads(line) for line in lines if not line.startswith(("/", "  "))]
    requests = [r for r in records if r.get("message") == "request" and r["path"] == "/healthz"]
    assert len(requests) >= 1
    # One line per request: the server adds no access line of its own.
    assert not [r for r in records if "healthz" in r["message"]]
    assert any(r["logger"] in {"_granian", "gunicorn.error"} for r in records)


@pytest.mark.parametrize("entry", ["todoscale.wsgi", "todoscale.worker"])
def test_a_server_s_app_goes_without_the_migration_machinery(entry, tmp_path):
    # Flask-Migrate brings Alembic, Mako and Pygments into every process that imports it;
    # the servers' apps never migrate (`todoscale serve` and `run` do, before they start).
    script = (
        f"import sys; import {entry} as m; "
        "app = getattr(m, 'app', None) or m.flask_app; "
        "print(sorted({'flask_migrate', 'alembic', 'mako'} & set(sys.modules)), "
        "'migrate' in app.extensions)"
    )
    env = {**os.environ, "TODOSCALE_INSTANCE_PATH": str(tmp_path), "TODOSCALE_ENV": "testing"}
    done = subprocess.run(
        [sys.executable, "-c", script, "worker"], capture_output=True, text=True, env=env,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == "[] False"
