"""One control plane for on-demand work across every process of a host.

An admin's order ("profile the next N requests of endpoint X", "trace memory for 10
minutes") is a small JSON file under `<metrics folder>/control/`. Every process runs one
daemon thread that reads those files once a second, so a request's only cost while nothing
is armed is reading one attribute (`Controls.order is None`). A process that serves a
request of the armed endpoint claims one of the N slots under a file lock, so exactly N
requests are profiled, whichever processes serve them; the order is gone after N, or when
it expires. The same thread writes what the request layer left queued (`metrics.Ledger`)
each second, this process's statistics once a minute (`stats`), and
folds the files of its group's dead workers into the archives (`groups.fold_dead`): first
thing at a process's start (a replacement worker sweeps its predecessors there, not on its
first request), then each second.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from todoscale.ops import groups, leaks, stats

logger = logging.getLogger(__name__)

FOLDER = "control"
ORDER_FILE = "profile.json"
POLL_SECONDS = 1.0
WRITE_SECONDS = 60.0
MAX_PROFILES = 100
MAX_PROFILE_SECONDS = 3_600


@dataclass
class Order:
    """Profile the next `remaining` requests of `endpoint` (a URL rule) until `expires_at`."""

    id: str
    endpoint: str
    count: int
    remaining: int
    expires_at: float
    by: str

    def expired(self, now: float | None = None) -> bool:
        """Whether the order has run out of time."""
        return (now or time.time()) >= self.expires_at


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[Path]:
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)  # atomic: a reader sees the old order or the new one, never half


def arm(root: Path, endpoint: str, count: int, seconds: float, by: str) -> Order:
    """Arm a profile order (replacing any other): the next `count` requests of `endpoint`."""
    count = max(1, min(count, MAX_PROFILES))
    seconds = max(1.0, min(seconds, MAX_PROFILE_SECONDS))
    order = Order(secrets.token_hex(6), endpoint, count, count, time.time() + seconds, by)
    with _locked(root) as folder:
        _write(folder / ORDER_FILE, asdict(order))
    return order


def disarm(root: Path) -> None:
    """Cancel the profile order, if any."""
    with _locked(root) as folder:
        (folder / ORDER_FILE).unlink(missing_ok=True)


def current_order(root: Path) -> Order | None:
    """The armed order, None when there is none or it expired."""
    data = _read(root / FOLDER / ORDER_FILE)
    order = Order(**data) if data else None
    return None if order is None or order.expired() else order


def claim(root: Path, endpoint: str) -> Order | None:
    """Take one slot of the order for a request of `endpoint`; None when none is left."""
    with _locked(root) as folder:
        path = folder / ORDER_FILE
        data = _read(path)
        order = Order(**data) if data else None
        if order is None or order.endpoint != endpoint or order.remaining <= 0:
            return None
        if order.expired():
            path.unlink(missing_ok=True)
            return None
        order.remaining -= 1
        if order.remaining:
            _write(path, asdict(order))
        else:
            path.unlink(missing_ok=True)  # disarmed after N
        return order


class Flushes(Protocol):
    """What the control thread empties each second (the request layer's `Ledger`)."""

    def flush(self) -> None:
        """Write what waits."""


class Controls:
    """This process's view of the orders, refreshed by its control thread."""

    def __init__(self, root: Path, recorder: stats.Recorder, service: str = "local") -> None:
        self.root = root
        self.recorder = recorder
        self.service = service
        self.order: Order | None = None
        self.tracer = leaks.tracer_of(root)
        self._pid = 0
        self._lock = threading.Lock()
        self.group: Path | None = None
        self.ledger: Flushes | None = None
        self._swept = False

    def start(self, service: str | None = None, group: Path | None = None) -> None:
        """Start this process's control thread (again after a fork), once; given the process's
        group folder, the thread is also the group's janitor."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self.service = service or self.service
            self.group = group
        thread = threading.Thread(target=self._run, name="todoscale-control", daemon=True)
        thread.start()

    def janitor(self) -> None:
        """Fold dead workers' files (every group's at a process's start, then its own's)."""
        if self.group is not None:
            if self._swept:
                groups.fold_dead(self.group)
            else:
                groups.sweep(self.group.parent)
                self._swept = True

    def poll(self) -> None:
        """Read the orders now (the thread does it every second)."""
        self.order = current_order(self.root)
        self.tracer.follow()

    def write_stats(self) -> None:
        """Write this process's minute of statistics now (the thread does it every minute)."""
        stats.write(self.root, self.recorder, self.service)

    def _run(self) -> None:
        next_write = time.monotonic() + WRITE_SECONDS
        self._swept = False
        while True:
            try:
                self.janitor()
            except Exception:  # process boundary: the next round, or a scrape, folds them
                logger.exception("the janitor could not fold dead workers' files")
            time.sleep(POLL_SECONDS)
            try:
                ledger = self.ledger
                if ledger is not None:
                    ledger.flush()
                self.poll()
                if time.monotonic() >= next_write:
                    next_write += WRITE_SECONDS
                    self.write_stats()
                    stats.prune(self.root)
            except Exception:  # process boundary: the thread must outlive a bad moment
                logger.exception("the control thread failed; it carries on")
