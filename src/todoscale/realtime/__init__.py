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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask

from todoscale.config import ConfigurationError, broker_url
from todoscale.realtime.events import EMITTER_EXTENSION, connect_receivers
from todoscale.realtime.recheck import RECHECK_EXTENSION
from todoscale.realtime.transport import (
    DirectEmitter,
    Emitter,
    RelayEmitter,
    RelayHeartbeat,
    message_queue_url,
)

if TYPE_CHECKING:
    from todoscale.realtime.recheck import Recheck

MODES = ("serve", "emit", "off")


def uses_socketio(config: Mapping[str, Any]) -> bool:
    """Whether an app with these settings imports python-socketio: it serves Socket.IO, or
    emits through a message queue. An emitter through the relay (the embedded set-up's HTTP
    workers and Celery worker) never does; its entry point need not import it first."""
    mode = config["REALTIME"]
    return mode == "serve" or (mode == "emit" and message_queue_url(config) is not None)


def init_app(app: Flask) -> None:
    """Serve Socket.IO or only emit, as TODOSCALE_REALTIME says; connect the signal receivers."""
    mode = app.config["REALTIME"]
    if mode not in MODES:
        raise ConfigurationError(f"TODOSCALE_REALTIME={mode!r}: use one of {', '.join(MODES)}.")
    url = message_queue_url(app.config)
    emitter: Emitter | None = None
    # python-socketio (and Flask-SocketIO, Engine.IO: 5 MiB a process) only where it is
    # used: a serving process, or an emitter on a message queue (`uses_socketio`).
    if mode == "serve":
        from todoscale.realtime.serving import serve

        emitter = serve(app, url)
    elif mode == "emit" and url:
        from todoscale.realtime.managers import queue_manager

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
