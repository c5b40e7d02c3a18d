"""The `/metrics` scrape behind a busy day: N live workers and M restarts' worth of files.

Run as its own process (`python -m todoscale.bench.scrape`): multiprocess mode must be chosen
before prometheus_client is imported. Every worker, live or dead, is a real forked process
that records a day's worth of series through the app's own instruments (each route rule and
method of the app, answered with each of a few statuses; SQL per route; cache tiers, limits,
live updates), so the files are the ones a server leaves. The live ones stay up and record
between scrapes, which are timed as a median. M workers then die at once, twice: the first
burst is found by a scrape before any janitor's round (that scrape folds their files into
the archives itself: `unswept_first_ms`); after the second, the janitor's round that a live
worker's control thread runs within a second (`janitor_ms`), then the first scrape
(`first_ms`, the goal's figure). Last, a burst of workers that a scrape saw alive die, and
a scrape comes while another process's janitor folds them (`race_ms`). What is timed is
what `GET /metrics` does with the files: the sweep, then the page (the database's job
figures, cached for seconds, are left out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from todoscale.ops import groups

STATUSES = (200, 400, 401, 404, 429)
METHODS = ("GET", "POST", "PATCH", "DELETE")
# As many (rule, method) pairs as the app has (77 rules, 80 pairs when this was written).
ROUTES = 80


def _routes() -> list[tuple[str, str]]:
    return [(f"/api/v1/bench/{n // 4}/r{n}", METHODS[n % 4]) for n in range(ROUTES)]


def record_day(seed: int) -> None:
    """Record one worker's day: every series once or more, through the app's instruments (the
    request layer's own files for requests, SQL and in-flight, as a serving worker writes)."""
    from todoscale import instruments
    from todoscale.ops import values

    folder = groups.current_group()
    assert folder is not None
    layer = values.FileValues(folder, os.getpid())
    for n, (rule, method) in enumerate(_routes()):
        for status in STATUSES:
            for k in range(3):
                layer.started()
                with layer.lock:
                    layer.finished(rule, method, status, 0.0007 * (1 + (seed + n + k) % 40), 0, 0)
        layer.started()
        with layer.lock:
            layer.finished(rule, method, 200, 0.001, 3, 0.002)
    for tier in ("local", "shared"):
        for result in ("hit", "miss"):
            instruments.CACHE_REQUESTS.labels(tier, result).inc(seed + 1)
    for kind in ("limit", "login"):
        instruments.RATE_LIMITED.labels(kind).inc()
    for event in ("todo.created", "todo.updated", "todo.deleted", "list.updated", "job.updated"):
        instruments.SOCKETIO_EMITTED.labels(event).inc()
        instruments.SOCKETIO_DELIVERED.labels(event).inc(2)
    layer.started()  # one request in flight
    instruments.SOCKETIO_CONNECTIONS.inc(3)
    _layers[os.getpid()] = layer


_layers: dict[int, object] = {}


def _worker(seed: int, keep: bool, pipes: dict[int, int]) -> tuple[int, int | None]:
    """Fork a worker that records its day; a kept one then records one request per line read
    from its pipe (and answers) until the pipe closes. Return its pid and the pipe's end."""
    down_r, down_w = os.pipe()
    up_r, up_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        for fd in (down_w, up_r, *pipes.values(), *_replies.values()):
            os.close(fd)  # the other workers' pipes: each must see its own end close
        record_day(seed)
        os.write(up_w, b".")
        if keep:
            from todoscale.ops import values

            layer = _layers[os.getpid()]
            assert isinstance(layer, values.FileValues)
            while os.read(down_r, 1):
                with layer.lock:
                    layer.finished(_routes()[0][0], "GET", 200, 0.001, 0, 0)
                layer.started()
                os.write(up_w, b".")
        os._exit(0)
    os.close(down_r)
    os.close(up_w)
    os.read(up_r, 1)  # its day is recorded
    if not keep:
        os.close(down_w)
        os.waitpid(pid, 0)
        os.close(up_r)
        return pid, None
    _replies[pid] = up_r
    return pid, down_w


_replies: dict[int, int] = {}


def _poke(pipes: dict[int, int]) -> None:
    """Each live worker records one more request (its files change between scrapes)."""
    for pid, pipe in pipes.items():
        os.write(pipe, b".")
        os.read(_replies[pid], 1)


def scrape(root: Path) -> tuple[float, float]:
    """One scrape's work on the files (the view's sweep, then the page): its seconds of wall
    clock and of this process's CPU."""
    from todoscale.ops import exposition

    started, cpu = time.perf_counter(), time.process_time()
    groups.sweep(root)
    page = exposition.render(root, None)
    took = time.perf_counter() - started, time.process_time() - cpu
    assert b"todoscale_http_request_duration_seconds_bucket" in page
    return took


def _timed(work: Any) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - started, time.process_time() - cpu


def run(live: int, restarts: int, runs: int) -> dict[str, Any]:
    """Set the folder up, scrape `runs` times; the figures (milliseconds)."""
    base = Path(tempfile.mkdtemp(prefix="todoscale-scrape-"))
    root = base / "metrics"
    folder = groups.start_group(root, "web-bench", os.environ)
    pipes: dict[int, int] = {}
    from todoscale.ops import exposition  # noqa: F401  (imported before the clock starts)

    try:
        for n in range(live):
            pid, pipe = _worker(2 * restarts + n, keep=True, pipes=pipes)
            assert pipe is not None
            pipes[pid] = pipe
        # A burst of deaths that a scrape finds before any janitor's round: it folds them.
        for n in range(restarts):
            _worker(n, keep=False, pipes=pipes)
        files_before = sum(1 for _ in folder.glob("*.db"))
        unswept = _timed(lambda: scrape(root))
        files_unswept = sum(1 for _ in folder.glob("*.db"))
        # Another burst, then what a live worker's control thread does within a second.
        for n in range(restarts):
            _worker(restarts + n, keep=False, pipes=pipes)
        janitor = _timed(lambda: groups.fold_dead(folder))
        first = scrape(root)
        times = []
        for _ in range(runs):
            _poke(pipes)
            times.append(scrape(root))
        page = _page(root)
        files_after = sum(1 for _ in folder.glob("*.db"))
        race, overlapped = _race(root, folder, pipes, 2 * restarts + live, restarts)
    finally:
        for pid, pipe in pipes.items():
            os.close(pipe)
            os.waitpid(pid, 0)
            os.close(_replies.pop(pid))
        _rmtree(base)
    return {
        "live_workers": live,
        "restarts": restarts,
        "files_before": files_before,
        "files_after": files_after,
        "files_after_unswept_scrape": files_unswept,
        "series": page["series"],
        "page_bytes": page["bytes"],
        "first_ms": round(first[0] * 1000, 2),
        "first_cpu_ms": round(first[1] * 1000, 2),
        "janitor_ms": round(janitor[0] * 1000, 2),
        "janitor_cpu_ms": round(janitor[1] * 1000, 2),
        "unswept_first_ms": round(unswept[0] * 1000, 2),
        "unswept_first_cpu_ms": round(unswept[1] * 1000, 2),
        "race_ms": round(race[0] * 1000, 2),
        "race_cpu_ms": round(race[1] * 1000, 2),
        "race_overlapped": overlapped,
        "median_ms": round(statistics.median(t[0] for t in times) * 1000, 2),
        "median_cpu_ms": round(statistics.median(t[1] for t in times) * 1000, 2),
        "min_ms": round(min(t[0] for t in times) * 1000, 2),
        "max_ms": round(max(t[0] for t in times) * 1000, 2),
        "runs": runs,
    }


def _race(
    root: Path, folder: Path, pipes: dict[int, int], seed: int, count: int
) -> tuple[tuple[float, float], bool]:
    """`count` workers that a scrape saw alive (as Prometheus does every few seconds) die at
    once; a janitor (another process, as a live worker's control thread is) starts folding
    them, and a scrape comes while it does: its seconds, and whether the janitor was still
    at it when the scrape ended (the dead workers' files still there)."""
    burst: dict[int, int] = {}
    for n in range(count):
        pid, pipe = _worker(seed + n, keep=True, pipes={**pipes, **burst})
        assert pipe is not None
        burst[pid] = pipe
    scrape(root)
    for pid, pipe in burst.items():
        os.close(pipe)
        os.waitpid(pid, 0)
        os.close(_replies.pop(pid))
    janitor = os.fork()
    if janitor == 0:
        for fd in (*pipes.values(), *_replies.values()):
            os.close(fd)
        while not groups.fold_dead(folder):
            time.sleep(0.001)
        os._exit(0)
    deadline = time.monotonic() + 10
    while _claim_free(folder) and time.monotonic() < deadline:
        time.sleep(0.0005)
    took = scrape(root)
    overlapped = any(groups.pid_of(path) in burst for path in folder.iterdir())
    os.waitpid(janitor, 0)
    return took, overlapped


def _claim_free(folder: Path) -> bool:
    with groups.claimed(folder) as free:
        return free


def _page(root: Path) -> dict[str, int]:
    from todoscale.ops import exposition

    page = exposition.render(root, None)
    series = sum(1 for line in page.splitlines() if line and not line.startswith(b"#"))
    return {"series": series, "bytes": len(page)}


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    """Print the figures of one set-up as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", type=int, default=4, help="live workers [4]")
    parser.add_argument("--restarts", type=int, default=100, help="workers that exited [100]")
    parser.add_argument("--runs", type=int, default=9, help="scrapes timed [9]")
    args = parser.parse_args()
    if "prometheus_client" in sys.modules:
        raise SystemExit("run this as its own process: python -m todoscale.bench.scrape")
    print(json.dumps(run(args.live, args.restarts, args.runs)))


if __name__ == "__main__":
    main()
