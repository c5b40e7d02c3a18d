"""The command lines of the HTTP servers `todoscale serve` can run: granian or gunicorn.

Their settings (`TODOSCALE_BIND`, `TODOSCALE_WORKERS`, ...) are read through `load_config`,
like the app's: each function takes the environment they come from.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

from todoscale.config import VARIABLES, load_config

# Inside the package, so that an installed wheel (not only a checkout) can serve with it.
GUNICORN_CONF = Path(__file__).resolve().parent / "gunicorn.conf.py"
SERVERS = ("granian", "gunicorn")
WSGI_APP = "todoscale.wsgi:app"
# granian's command line with the app's modules imported before it forks its workers.
PREFORK = "todoscale.prefork"
# The Socket.IO service: gunicorn's gevent worker without gunicorn's master.
LONE_WORKER = "todoscale.deploy.lone_worker"
RESPAWN_SECONDS = 10
# How long a stopping granian worker may take to finish its requests before it is killed.
STOP_SECONDS = 10


def granian_options(workers: int, blocking_threads: int) -> list[str]:
    """How granian serves a WSGI app here, the service and the bench's floors alike."""
    return [
        "--interface",
        "wsgi",
        "--no-ws",
        *("--workers", str(workers)),
        *("--blocking-threads", str(blocking_threads)),
        *("--backlog", "2048"),
        # The app writes one JSON line per request itself; granian's access log would double it.
        "--no-access-log",
    ]


def log_config(level: str = "INFO") -> dict[str, object]:
    """A dictConfig that writes a server's own logs as the app's JSON lines, on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "todoscale.ops.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            name: {"level": level, "handlers": ["stderr"], "propagate": False}
            for name in ("gunicorn.error", "gunicorn.access", "_granian", "granian.access")
        },
        "root": {"level": "WARNING", "handlers": ["stderr"]},
    }


class GunicornLogger(Logger):
    """gunicorn's logger without its access log: the app writes one JSON line per request
    (TODOSCALE_REQUEST_LOG), and gunicorn would log each request a second time."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Log nothing: the request was logged by the app."""


def bind_address(environ: Mapping[str, str]) -> tuple[str, int]:
    """Host and port from TODOSCALE_BIND, else 127.0.0.1 and $PORT (8000)."""
    return _bind(load_config(environ), environ)


def _bind(settings: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[str, int]:
    bind = settings["BIND"] or f"127.0.0.1:{environ.get('PORT', '8000')}"
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{VARIABLES['BIND']}={bind!r} is not host:port, e.g. 127.0.0.1:8000")
    return host.strip("[]"), int(port)


def bind_spec(environ: Mapping[str, str]) -> str:
    """gunicorn's --bind value for TODOSCALE_BIND or $PORT: host:port, [v6 address]:port."""
    host, port = bind_address(environ)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def granian_argv(environ: Mapping[str, str], log_dir: Path) -> list[str]:
    """granian's WSGI server: one worker per core, each running the app on blocking threads."""
    settings = load_config(environ)
    host, port = _bind(settings, environ)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / "granian-logging.json"
    log_file.write_text(json.dumps(log_config(settings["LOG_LEVEL"])))
    workers = settings["WORKERS"] or os.cpu_count() or 1
    return [
        sys.executable,
        "-m",
        PREFORK,
        *granian_options(workers, settings["BLOCKING_THREADS"]),
        *("--host", host, "--port", str(port)),
        "--respawn-failed-workers",
        # A reload (SIGHUP) starts each worker's replacement, waits this long, then stops the
        # old one, ready or not: at granian's 3.5 s, a busy 2-core machine (the app loads in
        # 3 to 15 s there) had both old workers stopped before either new one served, and
        # connections were refused. With 2 workers, that now takes a load of over 20 s.
        *("--respawn-interval", str(RESPAWN_SECONDS)),
        # A worker sent TERM in the instant it sets up its own signal handling (a respawned
        # one, its app loaded within milliseconds now that the modules come with the fork)
        # can miss it and serve on, and granian would wait for it forever
        # (tests/chaos/test_reload.py: 3 of 6 loaded runs); past this it is killed.
        *("--workers-kill-timeout", str(STOP_SECONDS)),
        *("--log-config", str(log_file)),
        WSGI_APP,
    ]


def gunicorn_argv(config_path: str | None) -> list[str]:
    """gunicorn with the package's gunicorn.conf.py (or another configuration file)."""
    conf = config_path or str(GUNICORN_CONF)
    return [sys.executable, "-m", "gunicorn", "--config", conf, WSGI_APP]


# What makes a gunicorn process the Socket.IO service: it serves /socket.io/ (and the whole
# app, so `todoscale run` needs no other web server) from one gevent worker, which holds every
# connection: Socket.IO's state lives in that process.
SOCKETIO_ENV = {VARIABLES["REALTIME"]: "serve", VARIABLES["WORKER_CLASS"]: "gevent"}


def socketio_argv(bind: str, graceful_timeout: int = 10) -> list[str]:
    """gunicorn's gevent worker serving the app and Socket.IO on `bind`, without a master
    (deploy/lone_worker.py)."""
    return [
        sys.executable,
        "-m",
        LONE_WORKER,
        *("--config", str(GUNICORN_CONF)),
        *("--worker-class", "gevent", "--workers", "1", "--bind", bind),
        # Recycling the only worker would drop every connection at once.
        *("--max-requests", "0"),
        # Every open WebSocket is one of gunicorn's gevent connections; at the default
        # (1,000) a thousand clients leave no room for HTTP requests (measured by the bench).
        *("--worker-connections", "10000"),
        # Open WebSocket connections would hold a stopping worker for the whole default.
        *("--graceful-timeout", str(graceful_timeout)),
        WSGI_APP,
    ]


def celery_argv(*args: str) -> list[str]:
    """`celery -A todoscale.worker <args>` with this Python."""
    return [sys.executable, "-m", "celery", "-A", "todoscale.worker", *args]


def server_argv(
    server: str, environ: Mapping[str, str], instance_path: Path, config_path: str | None = None
) -> list[str]:
    """The command line that serves the app with `server`."""
    if server == "granian":
        return granian_argv(environ, instance_path)
    if server == "gunicorn":
        return gunicorn_argv(config_path)
    raise ValueError(f"unknown server {server!r}: use one of {', '.join(SERVERS)}")
