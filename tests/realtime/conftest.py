"""Real Socket.IO servers (gunicorn, one gevent worker) and real clients, for the live tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import socketio
from flask import Flask

from todoscale import create_app
from todoscale.deploy import servers
from todoscale.deploy.probes import wait_answer
from todoscale.extensions import db

START_SECONDS = 30.0
WAIT_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SocketServer:
    """`todoscale run`'s web process (TODOSCALE_REALTIME=serve) on a free port of 127.0.0.1."""

    def __init__(self, database_url: str, instance: Path, extra_env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.instance = instance
        self.log = instance / f"server-{self.port}.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("TODOSCALE_")}
        env.update(servers.SOCKETIO_ENV)
        env.update(
            {
                "TODOSCALE_ENV": "testing",
                "TODOSCALE_DATABASE_URL": database_url,
                "TODOSCALE_INSTANCE_PATH": str(instance),
                "TODOSCALE_LOG_LEVEL": "WARNING",
                **extra_env,
            }
        )
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                servers.socketio_argv(f"127.0.0.1:{self.port}", graceful_timeout=2),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait_answer(f"{self.url}/healthz", self.proc, START_SECONDS):
            return
        self.stop()
        raise RuntimeError(f"the Socket.IO server did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def call(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    """One API request to a server with a bearer token; the decoded JSON reply (or None)."""
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


class LiveClient:
    """A python-socketio client on the WebSocket transport that records every event."""

    def __init__(self, url: str, token: str) -> None:
        self.events: list[tuple[str, Any]] = []
        self._changed = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", self._record)
        self.sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)

    def _record(self, event: str, data: Any) -> None:
        with self._changed:
            self.events.append((event, data))
            self._changed.notify_all()

    def wait_for(
        self, done: Callable[[list[tuple[str, Any]]], bool], timeout: float = WAIT_SECONDS
    ) -> list[tuple[str, Any]]:
        """Wait until `done(events)` holds; fail with what arrived after `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: done(self.events), timeout=timeout):
                pytest.fail(f"timed out; {len(self.events)} events arrived: {self.events[-5:]}")
            return list(self.events)

    def wait_for_event(self, name: str, match: Callable[[Any], bool]) -> Any:
        """Wait for an event `name` whose payload satisfies `match`; return the payload."""
        found = self.wait_for(lambda got: any(e == name and match(d) for e, d in got))
        return next(d for e, d in found if e == name and match(d))

    def close(self) -> None:
        self.sio.disconnect()
        # A server that stopped first closed the WebSocket with a close frame (the Socket.IO
        # service's worker ends its connections itself); python-socketio then leaves its end
        # to the garbage collector, whose ResourceWarning would land in a later test.
        websocket = getattr(self.sio.eio, "ws", None)
        if websocket is not None:
            websocket.close()


@pytest.fixture
def live_clients() -> Iterator[Callable[[str, str], LiveClient]]:
    """Connect live clients on demand; all disconnected at the end."""
    made: list[LiveClient] = []

    def connect(url: str, token: str) -> LiveClient:
        client = LiveClient(url, token)
        made.append(client)
        return client

    yield connect
    for client in made:
        client.close()


@contextmanager
def running(server: SocketServer) -> Iterator[SocketServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def queue_env(app: Flask) -> dict[str, str]:
    """What servers need to share the suite's Redis, when the suite runs with one."""
    url = app.config.get("REDIS_URL")
    return {"TODOSCALE_REDIS_URL": url} if url else {}


@pytest.fixture
def server(app: Flask, tmp_path: Path) -> Iterator[SocketServer]:
    """One serving process on the suite's database: on SQLite alone (the relay carries other
    processes' events), on PostgreSQL with the suite's Redis as its message queue."""
    with running(
        SocketServer(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path, queue_env(app))
    ) as s:
        yield s


@pytest.fixture
def emitter(app: Flask, server: SocketServer) -> Iterator[Flask]:
    """An app in this process that only emits, as an HTTP instance or a worker does: through
    the server's relay queue (SQLite) or through Redis (PostgreSQL)."""
    emitting = create_app(
        {
            "ENV_NAME": "testing",
            "INSTANCE_PATH": str(server.instance),
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config.get("REDIS_URL"),
            "REALTIME": "emit",
        }
    )
    yield emitting
    with emitting.app_context():
        db.session.remove()
        db.engine.dispose()
