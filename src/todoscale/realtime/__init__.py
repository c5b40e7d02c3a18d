"""Socket.IO: connect authentication, rooms, and signals turned into events.

Processes. `TODOSCALE_REALTIME=serve` marks the process that serves `/socket.io/` (gunicorn
with one gevent worker: `todoscale run`, the cluster's Socket.IO service); it serves the
HTTP app too. Every other process (HTTP instances, Celery workers) is `emit`: it only sends.
`off` sends nothing (the test suite's default; its realtime tests turn it on).

Across processes. With a message queue (TODOSCALE_SOCKETIO_MESSAGE_QUEUE, else Redis) the
serving processes share it through python-socketio's pub/sub manager and emitters publish
to it with a write-only one. Without one (the embedded set-up) the single serving process
keeps its clients in memory, and emitters hand their events to it through the relay: a
persistent local kombu queue on the Celery broker's URL (see `transport`).

Rooms. Each connection joins one room, `user:<id>`, and a list's event goes to the rooms of
the list's owner and members, read from the database by the emitting process right after
its commit. We address users, not lists, because python-socketio can move a connection
between rooms only in the process that holds it: a `list:<id>` room would leave a client
connected to process 2 in (or out of) a list whose membership changed through process 1.
Reading the members at emit time makes a membership change take effect at once for every
connected client, without reconnecting: a removed member's very next event skips them.

Credentials are checked when a client connects, and again every SOCKETIO_RECHECK_SECONDS
by each serving process for its own connections (`recheck`): a revoked token, a logout or
an expired session closes the connections it had opened, on every process.
"""

from __future__ import annotations

from pathlib import Path

import socketio as socketio_lib
from flask import Flask
from gevent import monkey

from todoscale.config import ConfigurationError, broker_url, metrics_root
from todoscale.extensions import socketio
from todoscale.ops import http
from todoscale.ops.wsgi import with_headers
from todoscale.realtime.connection import RELAY_EXTENSION, on_connect, on_disconnect, origin_check
from todoscale.realtime.events import EMITTER_EXTENSION, connect_receivers
from todoscale.realtime.monitor import EXTENSION as MONITOR_EXTENSION
from todoscale.realtime.monitor import LiveMonitor
from todoscale.realtime.recheck import RECHECK_EXTENSION, Recheck
from todoscale.realtime.transport import (
    DirectEmitter,
    Emitter,
    RelayConsumer,
    RelayEmitter,
    RelayHeartbeat,
    message_queue_url,
    queue_manager,
)

MODES = ("serve", "emit", "off")
# Socket.IO's standard path (API.md), as Flask-SocketIO's `path` option spells it.
SOCKETIO_PATH = "socket.io"


def init_app(app: Flask) -> None:
    """Serve Socket.IO or only emit, as TODOSCALE_REALTIME says; connect the signal receivers."""
    mode = app.config["REALTIME"]
    if mode not in MODES:
        raise ConfigurationError(f"TODOSCALE_REALTIME={mode!r}: use one of {', '.join(MODES)}.")
    url = message_queue_url(app.config)
    emitter: Emitter | None = None
    if mode == "serve":
        emitter = _serve(app, url)
    elif mode == "emit" and url:
        emitter = DirectEmitter(queue_manager(url, write_only=True))
    elif mode == "emit":
        heartbeat = RelayHeartbeat(app.instance_path)
        emitter = RelayEmitter(broker_url(app.config, app.instance_path), heartbeat)
    app.extensions[EMITTER_EXTENSION] = emitter
    connect_receivers()


def stop(app: Flask, timeout: float = 5.0) -> bool:
    """End what serving started in the background for `app` (the connections' re-check);
    whether it ended within `timeout` seconds. A serving process never needs it: it serves
    until it exits."""
    recheck: Recheck | None = app.extensions.get(RECHECK_EXTENSION)
    return recheck is None or recheck.stop(timeout)


def _serve(app: Flask, url: str | None) -> Emitter:
    # gevent is installed everywhere, so Engine.IO's auto-detection would pick it even in an
    # unpatched process: say which, from whether this process was monkey-patched.
    async_mode = "gevent" if monkey.is_module_patched("socket") else "threading"
    manager = queue_manager(url, write_only=False) if url else socketio_lib.Manager()
    # Every option is passed every time: the SocketIO object keeps options across init_app
    # calls, and a process may build several apps (tests).
    socketio.init_app(
        app,
        async_mode=async_mode,
        client_manager=manager,
        # The connect handler reads the web session as auth.sessions opened it.
        manage_session=False,
        cors_allowed_origins=origin_check(
            app.config["SOCKETIO_CORS_ORIGINS"], any_port=bool(app.config["SOCKETIO_PORT"])
        ),
        logger=False,
        engineio_logger=False,
        path=SOCKETIO_PATH,
    )
    # Engine.IO answers its own requests, out of Flask's reach: the security headers of
    # every other response are added to its answers here.
    app.wsgi_app = with_headers(  # type: ignore[method-assign,assignment]
        app.wsgi_app, f"/{SOCKETIO_PATH}/", http.fixed_headers(app.config)
    )
    server = socketio.server
    assert server is not None
    # Registered on this app's server (init_app made a new one), not kept for later apps.
    socketio.on_event("connect", on_connect)
    socketio.on_event("disconnect", on_disconnect)
    monitor = LiveMonitor(Path(metrics_root(app.config)))
    app.extensions[MONITOR_EXTENSION] = monitor
    app.extensions[RECHECK_EXTENSION] = Recheck(app, server)
    if url is None:
        app.extensions[RELAY_EXTENSION] = RelayConsumer(
            broker_url(app.config, app.instance_path),
            server,
            RelayHeartbeat(app.instance_path),
            monitor,
        )
    return DirectEmitter(server, monitor)
