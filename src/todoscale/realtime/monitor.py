"""What a serving process holds, for the admin console: its connections and recent events.

Each process that serves Socket.IO keeps its connections and its last events in memory and
writes them to `<metrics folder>/live/<pid>.json` at most every couple of seconds (and at
each re-check), so the console of any web process on the host can show them. The
connection gauge and the delivery counter are Prometheus metrics (`instruments`).
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from todoscale.instruments import SOCKETIO_CONNECTIONS, SOCKETIO_DELIVERED
from todoscale.ops import groups

EXTENSION = "todoscale.realtime.monitor"
FOLDER = "live"
RECENT_EVENTS = 50
WRITE_EVERY_SECONDS = 2.0


class LiveMonitor:
    """One serving process's connections and recent events."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self.connections: dict[str, dict[str, Any]] = {}
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_EVENTS)
        self._written = 0.0

    def connected(self, sid: str, username: str, transport: str) -> None:
        """A client joined."""
        with self._lock:
            self.connections[sid] = {"user": username, "transport": transport, "since": time.time()}
        SOCKETIO_CONNECTIONS.inc()
        self.write(soon=True)

    def disconnected(self, sid: str) -> None:
        """A client left (or was closed)."""
        with self._lock:
            known = self.connections.pop(sid, None)
        if known is not None:
            SOCKETIO_CONNECTIONS.dec()
            self.write(soon=True)

    def delivered(self, event: str, rooms: list[str], recipients: int) -> None:
        """An event went to `recipients` connections of this process."""
        if recipients:
            SOCKETIO_DELIVERED.labels(event).inc(recipients)
        with self._lock:
            self.events.append(
                {"event": event, "rooms": len(rooms), "recipients": recipients, "at": time.time()}
            )
        self.write(soon=True)

    def write(self, soon: bool = False) -> None:
        """Write the file now, or (`soon`) only if the last write is a while ago."""
        now = time.monotonic()
        if soon and now - self._written < WRITE_EVERY_SECONDS:
            return
        self._written = now
        with self._lock:
            data = {
                "pid": os.getpid(),
                "at": time.time(),
                "connections": [{"sid": sid, **info} for sid, info in self.connections.items()],
                "events": list(self.events),
            }
        folder = self.root / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(folder / f"{os.getpid()}.json")


def recipients(server: Any, rooms: list[str], namespace: str = "/") -> int:
    """How many of this process's connections are in `rooms`."""
    held = server.manager.rooms.get(namespace, {})
    return sum(len(held.get(room, ())) for room in rooms)


def read_all(root: Path) -> list[dict[str, Any]]:
    """The live files of serving processes that still run (dead ones are deleted)."""
    found = []
    for path in sorted((root / FOLDER).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            continue
        if groups.alive(int(data["pid"])):
            found.append(data)
        else:
            path.unlink(missing_ok=True)
    return found
