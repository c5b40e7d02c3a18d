"""Per-endpoint statistics over the last 5 minutes, hour and day, without storing requests.

Each process adds every request to an in-memory table for the current minute (count, 5xx,
time, max, SQL statements and time, a sparse log-scale latency histogram) and keeps the
slowest requests with their ids. Once a minute its control thread appends that table as
one JSON line to `<metrics folder>/stats/<pid>.jsonl`; the admin console merges the lines
of every process for the window asked, plus its own unwritten minute. The cost is one
dictionary update per request and one line per process per minute, whatever the traffic:
the dashboards that store a row per request are the ones that stop loading.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Latency buckets grow by 10 %: a percentile read from them is within 10 % of the truth.
_BASE = 1.1
_LOG_BASE = math.log(_BASE)
_log = math.log
SLOWEST_KEPT = 20
KEEP_SECONDS = 86_400
WINDOWS = {"5m": 300, "1h": 3_600, "1d": 86_400}
FOLDER = "stats"
# A row: count, errors, seconds, max seconds, SQL statements, SQL seconds, {bucket: count}.
COUNT, ERRORS, SECONDS, MAX, SQL, SQL_SECONDS, BUCKETS = range(7)


def bucket_top(index: int) -> float:
    """The upper bound of bucket `index`, in seconds."""
    return float(_BASE ** (index + 1) / 1e6)


def _new_row() -> list[Any]:
    return [0, 0, 0.0, 0.0, 0, 0.0, {}]


@dataclass(order=True)
class SlowRequest:
    """One of the slowest requests: enough to find it in the JSON log."""

    seconds: float
    seq: int
    at: float = field(compare=False)
    endpoint: str = field(compare=False)
    method: str = field(compare=False)
    status: int = field(compare=False)
    request_id: str = field(compare=False)
    sql: int = field(compare=False)
    sql_seconds: float = field(compare=False)
    pid: int = field(compare=False, default=0)


class Recorder:
    """This process's table of the current minute and its slowest requests. `add` runs under
    `lock`, held by the caller: the request layer writes a request's values under the same
    one (`metrics.Ledger`), so a request takes one lock at its end."""

    def __init__(self, lock: threading.Lock | None = None) -> None:
        self.lock = lock or threading.Lock()
        self._rows: dict[tuple[str, str], list[Any]] = {}
        self._slow: list[SlowRequest] = []
        self._seq = itertools.count()
        self.since = time.time()

    def add(
        self,
        key: tuple[str, str],
        status: int,
        seconds: float,
        sql: int,
        sql_seconds: float,
    ) -> None:
        """Count one request (hold `lock`)."""
        micros = seconds * 1e6
        # Bucket b holds up to 1.1**(b+1) microseconds (inline: this runs at every request).
        bucket = int(_log(micros) / _LOG_BASE) if micros > 1 else 0
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = _new_row()
        row[COUNT] += 1
        if status >= 500:
            row[ERRORS] += 1
        row[SECONDS] += seconds
        if seconds > row[MAX]:
            row[MAX] = seconds
        row[SQL] += sql
        row[SQL_SECONDS] += sql_seconds
        buckets = row[BUCKETS]
        buckets[bucket] = buckets.get(bucket, 0) + 1

    def may_keep(self, seconds: float) -> bool:
        """Whether a request that took `seconds` may be among the slowest kept (then hand it
        to `keep_slow`, which decides under the lock). Read without the lock: a wrong guess
        costs a `keep_slow` call, or misses a request as slow as the slowest kept."""
        slow = self._slow  # `take` replaces the list, never empties it
        return len(slow) < SLOWEST_KEPT or seconds > slow[0].seconds

    def keep_slow(self, request: SlowRequest) -> None:
        """Remember one of the slowest requests of this minute (hold `lock`)."""
        request.seq = next(self._seq)
        if len(self._slow) < SLOWEST_KEPT:
            heapq.heappush(self._slow, request)
        elif request.seconds > self._slow[0].seconds:
            heapq.heapreplace(self._slow, request)

    def take(self) -> tuple[float, dict[tuple[str, str], list[Any]], list[SlowRequest]]:
        """Hand over the minute so far and start a new one."""
        with self.lock:
            since, rows, slow = self.since, self._rows, self._slow
            self._rows, self._slow, self.since = {}, [], time.time()
        return since, rows, slow

    def peek(self) -> tuple[dict[tuple[str, str], list[Any]], list[SlowRequest]]:
        """A copy of the minute so far (for this process's own console pages)."""
        with self.lock:
            rows = {key: [*row[:BUCKETS], dict(row[BUCKETS])] for key, row in self._rows.items()}
            return rows, list(self._slow)


def write(root: Path, recorder: Recorder, service: str) -> None:
    """Append this process's minute to its stats file (nothing when there were no requests)."""
    since, rows, slow = recorder.take()
    if not rows:
        return
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    line = {
        "t": time.time(),
        "since": since,
        "pid": os.getpid(),
        "service": service,
        "rows": [[endpoint, method, *row] for (endpoint, method), row in rows.items()],
        "slow": [vars(item) | {"pid": os.getpid()} for item in slow],
    }
    path = folder / f"{os.getpid()}.jsonl"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, separators=(",", ":")) + "\n")
    if path.stat().st_size > 4 * 1024 * 1024:
        _trim(path)


def _trim(path: Path) -> None:
    """Drop lines older than a day from a stats file that grew large."""
    horizon = time.time() - KEEP_SECONDS
    lines = [line for line in path.read_text().splitlines() if json.loads(line)["t"] >= horizon]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    tmp.replace(path)


def prune(root: Path) -> None:
    """Remove stats files nobody wrote for a day (their processes are long gone)."""
    horizon = time.time() - KEEP_SECONDS
    for path in (root / FOLDER).glob("*.jsonl"):
        if path.stat().st_mtime < horizon:
            path.unlink(missing_ok=True)


def lines(root: Path, seconds: float) -> Iterable[dict[str, Any]]:
    """Every process's minutes written within the last `seconds`."""
    horizon = time.time() - seconds
    for path in sorted((root / FOLDER).glob("*.jsonl")):
        if path.stat().st_mtime < horizon:
            continue
        with open(path, encoding="utf-8") as handle:
            for text in handle:
                line = json.loads(text)
                if line["t"] >= horizon:
                    yield line


def merge_into(
    total: dict[tuple[str, str], list[Any]], endpoint: str, method: str, row: list[Any]
) -> None:
    """Add one row (as written or peeked) into `total`."""
    into = total.get((endpoint, method))
    if into is None:
        into = total[(endpoint, method)] = _new_row()
    for index in (COUNT, ERRORS, SECONDS, SQL, SQL_SECONDS):
        into[index] += row[index]
    into[MAX] = max(into[MAX], row[MAX])
    for bucket, count in row[BUCKETS].items():
        key = int(bucket)
        into[BUCKETS][key] = into[BUCKETS].get(key, 0) + count


def quantile(buckets: dict[int, int], q: float) -> float:
    """The `q` quantile of a bucketed distribution, interpolated inside its bucket."""
    total = sum(buckets.values())
    if not total:
        return 0.0
    rank, seen = q * total, 0
    for index in sorted(buckets):
        count = buckets[index]
        if seen + count >= rank:
            low = bucket_top(index - 1) if index else 0.0
            return low + (bucket_top(index) - low) * ((rank - seen) / count)
        seen += count
    return bucket_top(max(buckets))
