"""The host's metrics folder: one subfolder per process group, kept bounded.

A process group is one server (granian's main process or gunicorn's master and their
workers), one Socket.IO service or one Celery worker. The process that owns a group (the
launcher: `todoscale serve`, gunicorn's master, `todoscale run`, the cluster) calls
`start_group` before any worker exists: it wipes the subfolder, writes its own pid there
and exports `PROMETHEUS_MULTIPROC_DIR`, which every worker inherits (prometheus_client picks
multiprocess mode when it is imported, so the variable must come first).

prometheus_client writes one file per metric type and pid and never removes any but the
`live*` gauges (and those only through `mark_process_dead`, which needs gunicorn's
`child_exit`; granian has no such hook). `sweep` does the rest, for any server: a group
whose owner died is removed; a dead worker's counters and histograms are added into the
group's `*_archive.db` files (so totals never go back) and its files deleted, gauges
included. It runs in every process's control thread each second (the janitor: `fold_dead`,
which reads the dead files without the host's lock and holds it only to write the sums),
when a worker starts and at each scrape (under the lock, unless a janitor's fold is under
way), so the number of files stays at (live processes x types) + 2 however often workers
are recycled.

Only the standard library at import: gunicorn's master imports this before the variable is
set. (A pid reused within moments of its process's death is the one case a sweep can get
wrong; Linux hands out pids in order, so it takes a wrap-around of the whole pid space.)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator, MutableMapping
from pathlib import Path

from todoscale.ops.valuefile import ValueFile, add_values

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OWNER_FILE = "owner"
LOCK_FILE = ".lock"
PROCESS_FILE = "process_{pid}.json"
_PID_FILE = re.compile(r"^(?:[a-z]+_)+(\d+)\.(?:db|json)$")
EXITS_METRIC = "todoscale_worker_exits"
EXITS_HELP = "Worker processes of this group that exited (recycled, crashed or killed)."
ARCHIVED_TYPES = ("counter", "histogram")


def process_start(pid: int) -> str | None:
    """The start time of `pid` in clock ticks since boot (tells a reused pid apart), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    # fields[0] is the state; the start time is field 22 of the whole line (index 19 here).
    if fields[0] in ("Z", "X"):
        return None  # a zombie has exited; only its parent has not collected it yet
    return fields[19]


def alive(pid: int, start: str | None = None) -> bool:
    """Whether `pid` runs (and, given `start`, is the same process that started then)."""
    now = process_start(pid)
    return now is not None and (start is None or now == start)


def group_name(role: str, place: str) -> str:
    """A group folder's name: its role and where it serves (`web-127-0-0-1-8000`)."""
    return f"{role}-{re.sub(r'[^A-Za-z0-9]+', '-', place).strip('-')}"


def start_group(root: str | os.PathLike[str], name: str, environ: MutableMapping[str, str]) -> Path:
    """Own the group `name`: wipe its folder, note this process as owner, export the variable."""
    folder = Path(root) / name
    with locked(root):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        pid = os.getpid()
        (folder / OWNER_FILE).write_text(f"{pid} {process_start(pid)}\n")
    environ[MULTIPROC_ENV] = str(folder)
    return folder


@contextlib.contextmanager
def locked(root: str | os.PathLike[str], wait: bool = True) -> Iterator[bool]:
    """Hold the host's metrics lock: sweeps and scrapes never see a half-moved file. With
    `wait` false, yield False at once, without the lock, when anyone holds it (this process
    too: the lock is a `flock` on a descriptor of its own, so a second `locked` in a process
    that holds it waits for itself)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    with open(Path(root) / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def groups(root: str | os.PathLike[str]) -> list[Path]:
    """The group folders under `root` (those with an owner file)."""
    base = Path(root)
    if not base.is_dir():
        return []
    return sorted(path for path in base.iterdir() if (path / OWNER_FILE).is_file())


def owner(folder: Path) -> tuple[int, str | None] | None:
    """The owner's pid and start time, as `start_group` wrote them."""
    try:
        pid, _, start = (folder / OWNER_FILE).read_text().strip().partition(" ")
        return int(pid), (start if start and start != "None" else None)
    except (FileNotFoundError, ValueError):
        return None


def pid_of(path: Path) -> int | None:
    """The pid in a metrics file's name (`counter_123.db`), None for archives and others."""
    return _pid_in(path.name)


def _pid_in(name: str) -> int | None:
    match = _PID_FILE.match(name)
    return int(match.group(1)) if match else None


def sweep(root: str | os.PathLike[str]) -> None:
    """Remove the groups whose owner died, and fold every dead worker's files into archives."""
    with locked(root):
        for folder in groups(root):
            held = owner(folder)
            if held is None or not alive(*held):
                shutil.rmtree(folder, ignore_errors=True)
            else:
                compact(folder)


def compact(folder: Path) -> int:
    """Fold the files of dead pids into the archives (hold `locked`); return how many pids.
    While a janitor folds them (off the lock), leave them: they are read as they are until
    its fold replaces them with the archives' sums, under the lock, at once. Their gauges go
    at once either way."""
    dead = dead_pids(folder)
    if not dead:
        return 0
    with claimed(folder) as mine:
        if not mine:
            for name in os.listdir(folder):
                if name.startswith("gauge_") and _pid_in(name) in dead:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(folder, name))
            return 0
        retire(folder, *sorted(dead))
    return len(dead)


def dead_pids(folder: Path) -> set[int]:
    """The pids that have files in `folder` and no longer run."""
    pids = {pid for name in os.listdir(folder) if (pid := _pid_in(name))}
    return {pid for pid in pids if not alive(pid)}


@contextlib.contextmanager
def claimed(folder: Path) -> Iterator[bool]:
    """Claim the group's fold, without waiting (a `flock` on the folder itself): True when
    this caller holds it, False when another fold is under way."""
    try:
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        yield False
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        yield False
        return
    try:
        yield True
    finally:
        os.close(handle)  # the claim goes with the descriptor


def fold_dead(folder: Path) -> int:
    """The janitor's round: fold the group's dead workers into its archives when there are any
    (looked for without the lock, so a round with none costs a listing and a /proc read a
    pid). Every process's control thread runs it each second: dead workers' files are folded
    off the scrape's path, and a scrape seldom finds any left to fold.

    The files are read and summed without the host's lock (a dead process's files no longer
    change; the fold's claim keeps the other janitors from summing them too), which is held
    only to add the sums to the archives and delete the files: a scrape waits for that, never
    for the reading. A file folded meanwhile by someone else (gunicorn's `child_exit`) makes
    the round give its sums up, for the next round to start afresh."""
    try:
        dead = dead_pids(folder)
    except FileNotFoundError:  # the group is gone (its owner died, a sweep removed it)
        return 0
    if not dead:
        return 0
    with claimed(folder) as mine:
        if not mine:
            return 0
        sources = _files_of(folder, dead)
        summed = {path: path.stat().st_ino for path in sources if _archived(path)}
        sums = _sums(summed)
        with locked(folder.parent):
            try:
                if any(path.stat().st_ino != ino for path, ino in summed.items()):
                    return 0
            except FileNotFoundError:
                return 0
            _archive(folder, sums, len(dead))
            for path in sources:  # gauges too (a scrape may have removed them already)
                path.unlink(missing_ok=True)
    return len(dead)


def retire(folder: Path, *pids: int) -> None:
    """Add dead pids' counters and histograms to the archives, count their exits, drop their
    files. Their values are summed first, so each archive is opened and written once however
    many workers died since the last sweep; keys stay the bytes in the files."""
    # prometheus_client's files and the request layer's (`counter_request_<pid>.db`).
    sources = _files_of(folder, set(pids))
    _archive(folder, _sums(sources), len(pids))
    for path in sources:
        path.unlink(missing_ok=True)


def _files_of(folder: Path, pids: set[int]) -> list[Path]:
    # Names from os.listdir, a Path made only for the files kept: pathlib's iterdir made a
    # Path per file (a racing scrape's sweep spent 17 of its 148 ms there, 500 files).
    return [folder / name for name in os.listdir(folder) if _pid_in(name) in pids]


def _sums(sources: Iterable[Path]) -> dict[str, dict[bytes, float]]:
    """The values of the counter and histogram files among `sources`, summed by type and key."""
    sums = {}
    for typ in ARCHIVED_TYPES:
        summed: dict[bytes, float] = {}
        for source in sources:
            if source.name.startswith(f"{typ}_") and source.suffix == ".db":
                add_values(source, summed)
        sums[typ] = summed
    return sums


def _archived(path: Path) -> bool:
    return path.suffix == ".db" and path.name.startswith(tuple(f"{t}_" for t in ARCHIVED_TYPES))


def _archive(folder: Path, sums: dict[str, dict[bytes, float]], exits: int) -> None:
    """Add `sums` into the group's archives, and `exits` to its count of exited workers."""
    from prometheus_client.mmap_dict import mmap_key  # only after the variable is set

    key = mmap_key(EXITS_METRIC, EXITS_METRIC + "_total", [], [], EXITS_HELP).encode()
    counters = sums["counter"]
    counters[key] = counters.get(key, 0.0) + exits  # every exit counts, counted or not
    for typ, values in sums.items():
        if not values:
            continue
        archive = ValueFile(folder / f"{typ}_archive.db")
        try:
            for key, value in values.items():
                index = archive.index(key)  # may map the file afresh: values read after it
                archive.values[index] += value
        finally:
            archive.close()


def retire_if_free(folder: Path, pid: int) -> bool:
    """Fold a dead worker now if the lock is free; else leave it (False) to the janitor's next
    round, within a second, or the next scrape's sweep. For gunicorn's master, whose SIGCHLD
    handler runs `child_exit`: a worker dying while the handler folds another runs the
    handler again inside it, and a waiting `locked` there waits for itself, forever (the
    master then spawns no worker again: the 100-restart test's hang)."""
    with locked(folder.parent, wait=False) as held:
        if held:
            retire(folder, pid)
        return held


def announce(folder: Path, pid: int, details: dict[str, object]) -> None:
    """Describe a process of the group (kind, start time) for the admin's process table."""
    (folder / PROCESS_FILE.format(pid=pid)).write_text(json.dumps({"pid": pid, **details}))


def current_group() -> Path | None:
    """This process's group folder, when its launcher set one up."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None
