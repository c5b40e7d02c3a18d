"""Serving Socket.IO: the Flask-SocketIO object, bound in the process that serves
`/socket.io/`, with its connect handlers, the connections' re-check and the relay's reader.

Imported only there (`realtime.init_app` with TODOSCALE_REALTIME=serve): the processes that
only emit never import Flask-SocketIO nor python-socketio's server.
"""

from __future__ import annotations

from pathlib import Path

import socketio as socketio_lib
from flask import Flask
from flask_socketio import SocketIO
from gevent import monkey

from todoscale.config import broker_url, metrics_root
from todoscale.ops import http
from todoscale.ops.wsgi import with_headers
from todoscale.realtime.connection import RELAY_EXTENSION, on_connect, on_disconnect, origin_check
from todoscale.realtime.managers import queue_manager
from todoscale.realtime.monitor import EXTENSION as MONITOR_EXTENSION
from todoscale.realtime.monitor import LiveMonitor
from todoscale.realtime.recheck import RECHECK_EXTENSION, Recheck
from todoscale.realtime.transport import DirectEmitter, Emitter, RelayConsumer, RelayHeartbeat

# Socket.IO's standard path (API.md), as Flask-SocketIO's `path` option spells it.
SOCKETIO_PATH = "socket.io"
# Created unbound, as the extensions are; `serve` binds it.
socketio = SocketIO()


def serve(app: Flask, url: str | None) -> Emitter:
    """Bind Socket.IO to `app`: its server, handlers, re-check and relay reader; its emitter."""
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
