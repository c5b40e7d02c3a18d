"""`todoscale run`'s supervisord configuration and preparation (the real runs: tests/cli)."""

from __future__ import annotations

import configparser
import os
import socket
import sqlite3
import sys

import pytest

from todoscale import create_app
from todoscale.deploy import embedded
from todoscale.deploy.cluster import ClusterError


def _config(tmp_path, environ):
    parser = configparser.RawConfigParser()
    parser.read_string(embedded.supervisord_config(tmp_path, environ, {"WORKER_CONCURRENCY": 3}))
    return parser


def _embedded_app(tmp_path):
    """An app with the embedded defaults (local queue, no Redis) in `tmp_path`."""
    overrides = {"ENV_NAME": "testing", "INSTANCE_PATH": str(tmp_path)}
    overrides |= {"REDIS_URL": None, "BROKER_URL": None, "SOCKETIO_MESSAGE_QUEUE": None}
    return create_app(overrides)


def test_http_socketio_and_worker_run_in_the_foreground_and_log_to_the_terminal(tmp_path):
    parser = _config(tmp_path, {"PORT": "8123"})

    assert parser["supervisord"]["nodaemon"] == "true"
    assert parser["group:todoscale"]["programs"] == "web,socketio,worker"
    web, live = parser["program:web"], parser["program:socketio"]
    worker = parser["program:worker"]
    # HTTP on every core: granian, one worker per core.
    assert web["command"].startswith(f"{sys.executable} -m todoscale.prefork --interface wsgi")
    assert "--host 127.0.0.1 --port 8123 " in web["command"]
    assert f"--workers {os.cpu_count()} " in web["command"]
    # Live updates: one gevent process on the next port, which pages are told about.
    assert "--worker-class gevent --workers 1 --bind 127.0.0.1:8124" in live["command"]
    assert 'TODOSCALE_REALTIME="serve"' in live["environment"]
    for program in (web, live):
        assert 'TODOSCALE_SOCKETIO_PORT="8124"' in program["environment"]
    assert worker["command"].endswith(
        "worker --loglevel INFO --without-gossip --without-mingle --beat-thread"
        " --pool threads --concurrency 3"
    )
    for program in (web, live, worker):
        assert program["stdout_logfile"] == "/dev/stdout"
        assert program["stdout_logfile_maxbytes"] == "0"
        assert program["autorestart"] == "true" and program["killasgroup"] == "true"
    assert parser["unix_http_server"]["file"] == str(tmp_path / "run" / "supervisor.sock")


def test_todoscale_bind_and_socketio_port_win_over_port(tmp_path):
    environ = {"PORT": "8123", "TODOSCALE_BIND": "0.0.0.0:9000", "TODOSCALE_SOCKETIO_PORT": "9100"}
    parser = _config(tmp_path, environ)

    assert "--host 0.0.0.0 --port 9000 " in parser["program:web"]["command"]
    assert "--bind 0.0.0.0:9100" in parser["program:socketio"]["command"]


def test_prepare_declares_the_queues_once_and_writes_the_configuration(tmp_path):
    app = _embedded_app(tmp_path)
    with socket.socket() as sock, socket.socket() as other:
        sock.bind(("127.0.0.1", 0))
        other.bind(("127.0.0.1", 0))
        ports = {"PORT": str(sock.getsockname()[1])}
        ports["TODOSCALE_SOCKETIO_PORT"] = str(other.getsockname()[1])

    argv = embedded.prepare(str(tmp_path), ports, app.config, app.extensions["celery"])

    assert argv[-2:] == ["-c", str(tmp_path / "run" / "supervisord.conf")]
    assert (tmp_path / "run" / "supervisord.conf").is_file()
    with sqlite3.connect(tmp_path / "queue.sqlite") as db:
        queues = {name for (name,) in db.execute("SELECT name FROM kombu_queue")}
    assert queues == {"todoscale", "todoscale.events"}


def test_prepare_refuses_a_taken_port(tmp_path):
    app = _embedded_app(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ClusterError, match="set PORT or TODOSCALE_BIND"):
            embedded.prepare(
                str(tmp_path), {"PORT": str(port)}, app.config, app.extensions["celery"]
            )
    assert not (tmp_path / "run" / "supervisord.conf").exists()
