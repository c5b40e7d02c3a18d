"""How an event leaves a process: to its own Socket.IO server, a message queue, or the relay.

The relay is the embedded set-up's message queue: without Redis, processes that only emit
(the HTTP server's workers, the Celery worker) put events on a persistent local kombu queue,
and the one process that serves Socket.IO moves them to its clients. That process beats a
heartbeat file while it reads; emitters queue nothing while no heartbeat is fresh, so
`todoscale serve` alone (no Socket.IO process) does not fill the queue without bound.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import kombu

from todoscale import localqueue  # noqa: F401  (the `sqla` scheme's transport)
from todoscale.realtime.monitor import LiveMonitor, recipients

if TYPE_CHECKING:  # python-socketio only where a server or a message queue is used (managers)
    import socketio

logger = logging.getLogger(__name__)

RELAY_QUEUE = "todoscale.events"
# A relayed event older than this is stale (its server was down): dropped, not delivered.
RELAY_MAX_AGE_SECONDS = 60.0
# The relay polls the queue itself (get_nowait, then its server's own sleep): a cheap local
# SELECT.
RELAY_POLL_SECONDS = 0.05
# The reader touches its heartbeat this often; emitters take one older than RELAY_LIVE_SECONDS
# for no reader at all, and re-read a live one at most once per HEARTBEAT_RECHECK_SECONDS.
HEARTBEAT_SECONDS = 2.0
RELAY_LIVE_SECONDS = 10.0
HEARTBEAT_RECHECK_SECONDS = 1.0


class RelayHeartbeat:
    """The file of an instance folder whose modification time says a relay reader is alive."""

    def __init__(self, instance_path: str) -> None:
        self.path = os.path.join(instance_path, "realtime-relay.alive")
        self._live_until = 0.0

    def beat(self) -> None:
        """Say that a reader is alive now (the reader's side)."""
        with open(self.path, "a"):
            pass
        os.utime(self.path)

    def alive(self) -> bool:
        """True when a reader beat lately (the emitters' side; a live answer is reused a while)."""
        now = time.monotonic()
        if now < self._live_until:
            return True
        try:
            age = time.time() - os.stat(self.path).st_mtime
        except FileNotFoundError:
            return False
        if age > RELAY_LIVE_SECONDS:
            return False
        self._live_until = now + HEARTBEAT_RECHECK_SECONDS
        return True


class Emitter(Protocol):
    """Sends one event to the clients in some rooms, wherever they are connected."""

    def emit(self, event: str, data: dict[str, Any], rooms: list[str]) -> None:
        """Send `event` with `data` to every client in `rooms`."""

    def live(self) -> bool:
        """True when a sent event can reach a client (else the events are not built)."""


def message_queue_url(config: Mapping[str, Any]) -> str | None:
    """Where Socket.IO processes meet: TODOSCALE_SOCKETIO_MESSAGE_QUEUE, else Redis, else none."""
    return config.get("SOCKETIO_MESSAGE_QUEUE") or config.get("REDIS_URL") or None


def channel_name(url: str) -> str:
    """The pub/sub channel (or exchange) of the Socket.IO processes that share `url`."""
    # Redis pub/sub ignores the database number: naming the channel after it keeps
    # deployments (and test runs) that share one Redis on different databases apart.
    database = urlsplit(url).path.strip("/") or "0"
    return f"todoscale.socketio.{database}"


class DirectEmitter:
    """Emits through a Socket.IO server or a write-only manager: both fan out on their own."""

    def __init__(
        self, target: socketio.Server | socketio.PubSubManager, monitor: LiveMonitor | None = None
    ) -> None:
        self._target = target
        self._monitor = monitor  # given with a server: count what it hands to its clients

    def emit(self, event: str, data: dict[str, Any], rooms: list[str]) -> None:
        """Send `event` to `rooms` through the server or the message queue."""
        self._target.emit(event, data, namespace="/", room=rooms)
        if self._monitor is not None:
            self._monitor.delivered(event, rooms, recipients(self._target, rooms))

    def live(self) -> bool:
        """Always: a server or a message queue takes every event."""
        return True


class RelayEmitter:
    """Puts events on the relay queue for the process that serves Socket.IO."""

    def __init__(self, url: str, heartbeat: RelayHeartbeat) -> None:
        self._url = url
        self._heartbeat = heartbeat
        self._lock = threading.Lock()
        self._queue: Any = None
        self._pid = 0

    def emit(self, event: str, data: dict[str, Any], rooms: list[str]) -> None:
        """Queue `event` for `rooms`, stamped with the time it was sent (dropped, as moot,
        while no Socket.IO process reads the relay)."""
        if not self.live():
            return
        body = {"event": event, "data": data, "rooms": rooms, "at": time.time()}
        with self._lock:
            try:
                self._open().put(body, serializer="json")
            except Exception:
                self._queue = None  # reopen next time rather than reuse a broken connection
                raise

    def live(self) -> bool:
        """While a Socket.IO process reads the relay (its heartbeat is fresh)."""
        return self._heartbeat.alive()

    def _open(self) -> Any:
        # A forked Celery child must not share its parent's connection: each opens its own.
        if self._queue is None or self._pid != os.getpid():
            self._queue = kombu.Connection(self._url).SimpleQueue(RELAY_QUEUE)
            self._pid = os.getpid()
        return self._queue


class RelayConsumer:
    """The serving process's end of the relay: a background task started with the first client.

    Started lazily, so that other commands run with the serving environment (a CLI command,
    a migration) never take events off the queue.
    """

    def __init__(
        self,
        url: str,
        server: socketio.Server,
        heartbeat: RelayHeartbeat,
        monitor: LiveMonitor | None = None,
    ) -> None:
        self._url = url
        self._server = server
        self._heartbeat = heartbeat
        self._monitor = monitor
        self._lock = threading.Lock()
        self._started = False

    def start_once(self) -> None:
        """Start delivering relayed events, unless already started."""
        with self._lock:
            if not self._started:
                self._started = True
                self._heartbeat.beat()  # before the first client's first event is sent
                self._server.start_background_task(self._run)

    def _run(self) -> None:
        while True:
            try:
                with kombu.Connection(self._url) as connection:
                    queue = connection.SimpleQueue(RELAY_QUEUE)
                    _drain(queue, self._server, self._heartbeat, self._monitor)
            except Exception:  # process boundary: a background task must outlive a bad moment
                logger.exception("the Socket.IO relay failed; retrying in a second")
                self._server.sleep(1)


def _drain(
    queue: Any, server: socketio.Server, heartbeat: RelayHeartbeat, monitor: LiveMonitor | None
) -> None:
    beaten = 0.0
    while True:
        if time.monotonic() - beaten >= HEARTBEAT_SECONDS:
            heartbeat.beat()
            beaten = time.monotonic()
        try:
            message = queue.get_nowait()
        except queue.Empty:
            server.sleep(RELAY_POLL_SECONDS)
            continue
        message.ack()  # at most once: a live update that cannot be delivered now is moot
        body = message.payload
        if time.time() - body["at"] <= RELAY_MAX_AGE_SECONDS:
            server.emit(body["event"], body["data"], namespace="/", room=body["rooms"])
            if monitor is not None:
                monitor.delivered(body["event"], body["rooms"], recipients(server, body["rooms"]))
