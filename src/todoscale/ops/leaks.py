"""Leak hunting on every process at once: a time-boxed tracemalloc window and snapshots.

An admin opens a window (`<metrics folder>/control/leaks.json`): every process's control
thread starts tracemalloc (a few frames only: 25 frames cost ~50x per request) and dumps
a first snapshot; each "snapshot" order makes every process dump another, with objgraph's
growth by type since the previous one. The console compares two snapshots by file:line,
per process and merged. The window closes by itself when it expires, and tracemalloc
stops with it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
import time
import tracemalloc
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

WINDOW_FILE = "leaks.json"
FOLDER = "leaks"
MAX_FRAMES = 5
MAX_SECONDS = 1_800
TOP = 20
# Allocations made by the hunt itself, or by importing code, are not leaks of the app.
_IGNORED = (tracemalloc.__file__, "<frozen importlib._bootstrap>",
            "<frozen importlib._bootstrap_external>", "<unknown>", __file__,
            "*/objgraph.py")  # fmt: skip


@dataclass
class Window:
    """A tracing window: its id, frames per trace, when it ends, how many snapshots asked."""

    id: str
    frames: int
    expires_at: float
    snapshots: int
    by: str


def _control(root: Path) -> Path:
    return root / "control" / WINDOW_FILE


def open_window(root: Path, minutes: float, frames: int, by: str) -> Window:
    """Start tracing on every process for `minutes` (at most 30), `frames` deep (at most 5)."""
    window = Window(
        secrets.token_hex(6),
        max(1, min(frames, MAX_FRAMES)),
        time.time() + max(60.0, min(minutes * 60, MAX_SECONDS)),
        0,
        by,
    )
    _save(root, window)
    return window


def _save(root: Path, window: Window) -> None:
    path = _control(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(asdict(window)))
    tmp.replace(path)


def current_window(root: Path) -> Window | None:
    """The open window, None when none is open or it expired."""
    try:
        window = Window(**json.loads(_control(root).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None
    return None if window.expires_at <= time.time() else window


def ask_snapshot(root: Path) -> Window | None:
    """Ask every process for one more snapshot; None when no window is open."""
    window = current_window(root)
    if window is not None:
        window.snapshots += 1
        _save(root, window)
    return window


def close_window(root: Path) -> None:
    """Close the window: every process stops tracing at its next poll."""
    _control(root).unlink(missing_ok=True)


def clear(root: Path) -> None:
    """Delete every window's snapshots."""
    shutil.rmtree(root / FOLDER, ignore_errors=True)


class Tracer:
    """One process's side of the windows: follows the control file, dumps its snapshots."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.window_id: str | None = None
        self.taken = -1
        self.started_here = False
        self._lock = threading.Lock()

    def follow(self) -> None:
        """Start, snapshot or stop as the control file says (one caller at a time)."""
        with self._lock:
            self._follow()

    def _follow(self) -> None:
        window = current_window(self.root)
        if window is None or window.id != self.window_id:
            self._stop()
        if window is None:
            return
        if self.window_id is None:
            import objgraph  # imported by processes that hunt, not by every process

            self.window_id, self.taken = window.id, -1
            if not tracemalloc.is_tracing():
                tracemalloc.start(window.frames)
                self.started_here = True
            objgraph.growth(limit=TOP)  # the baseline of the next growth
        while self.taken < window.snapshots:
            self.taken += 1
            self._dump(window.id, self.taken)

    def _stop(self) -> None:
        if self.window_id is not None and self.started_here:
            tracemalloc.stop()
        self.window_id, self.started_here = None, False

    def _dump(self, window_id: str, number: int) -> None:
        folder = self.root / FOLDER / window_id
        folder.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        import objgraph

        growth = [[name, count, delta] for name, count, delta in objgraph.growth(limit=TOP)]
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, name) for name in _IGNORED]
        )
        snapshot.dump(str(folder / f"{pid}-{number}.snap"))
        meta = {"pid": pid, "number": number, "at": time.time(), "growth": growth}
        (folder / f"{pid}-{number}.json").write_text(json.dumps(meta))


_TRACERS: dict[Path, Tracer] = {}
_TRACERS_LOCK = threading.Lock()


def tracer_of(root: Path) -> Tracer:
    """The process's tracer of the windows of `root`: one for every app of the process on
    that folder (tracemalloc and the heap are the process's; each app's control thread
    taking each snapshot walked the heap once per app, under tracing, in the suite's many)."""
    with _TRACERS_LOCK:
        found = _TRACERS.get(root)
        if found is None:
            found = _TRACERS[root] = Tracer(root)
        return found


def snapshots(root: Path, window_id: str) -> dict[int, list[dict[str, Any]]]:
    """The snapshots of a window, by pid, oldest first."""
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted((root / FOLDER / window_id).glob("*.json")):
        meta = json.loads(path.read_text())
        found[meta["pid"]].append(meta)
    for items in found.values():
        items.sort(key=lambda item: item["number"])
    return dict(found)


def windows(root: Path) -> list[str]:
    """Ids of windows with snapshots, newest first."""
    base = root / FOLDER
    if not base.is_dir():
        return []
    return [p.name for p in sorted(base.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)]


def growth(root: Path, window_id: str, pid: int, older: int, newer: int) -> list[dict[str, Any]]:
    """Top growth by file:line of one process between two of its snapshots."""
    folder = root / FOLDER / window_id
    old = tracemalloc.Snapshot.load(str(folder / f"{pid}-{older}.snap"))
    new = tracemalloc.Snapshot.load(str(folder / f"{pid}-{newer}.snap"))
    rows = []
    for stat in new.compare_to(old, "lineno")[:TOP]:
        frame = stat.traceback[0]
        rows.append(
            {
                "where": f"{frame.filename}:{frame.lineno}",
                "size_diff": stat.size_diff,
                "count_diff": stat.count_diff,
                "size": stat.size,
            }
        )
    return rows


def merged_growth(per_pid: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The growth of every process added up by file:line, largest first."""
    total: dict[str, dict[str, Any]] = {}
    for rows in per_pid.values():
        for row in rows:
            into = total.setdefault(row["where"], {"where": row["where"], "size_diff": 0,
                                                   "count_diff": 0, "size": 0})  # fmt: skip
            for key in ("size_diff", "count_diff", "size"):
                into[key] += row[key]
    return sorted(total.values(), key=lambda row: row["size_diff"], reverse=True)[:TOP]
