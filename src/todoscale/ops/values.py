"""The request layer's values, written in place in files that prometheus_client reads.

In multiprocess mode prometheus_client writes each value through a lock, a pid check, a
dictionary look-up and a `struct` call: with four values a request (a histogram bucket and
sum, in-flight up and down) that was most of the layer's cost. The layer writes files of its
own instead, in the same format (`valuefile`), named so that prometheus_client's merge and
ours read them like any other (`histogram_request_<pid>.db`). A series' entry is appended
once; from then on its value is one double of a memoryview over the mapped file, added to in
place. Values are in the file
as soon as they are counted: a scrape sees them at once, a SIGKILLed worker loses none, and
the sweep folds a dead worker's files like prometheus_client's.

Outside multiprocess mode (tests, `flask run`) the same series go to prometheus_client's
in-memory metrics, where a value costs little and the default registry shows it.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from pathlib import Path

from prometheus_client.mmap_dict import mmap_key
from prometheus_client.utils import floatToGoString

from todoscale.instruments import (
    IN_FLIGHT,
    LATENCY_BUCKETS,
    REQUEST_LABELS,
    REQUEST_SECONDS,
    SQL_SECONDS,
    SQL_STATEMENTS,
)
from todoscale.ops.valuefile import ValueFile

PREFIX = "request"
_BOUNDS = (*LATENCY_BUCKETS, float("inf"))
_LE = tuple(floatToGoString(bound) for bound in _BOUNDS)


def _name_and_help(metric: object) -> tuple[str, str]:
    described = metric.describe()[0]  # type: ignore[attr-defined]
    return described.name, described.documentation


class FileValues:
    """The layer's series of this process (request histogram, SQL counters, in-flight), in
    three files of its own in `folder`; `lock` serializes every write (`started` and
    `finished` run with it held by the caller, who adds the request's statistics under it
    too: `metrics.Ledger`)."""

    def __init__(self, folder: Path, pid: int, lock: threading.Lock | None = None) -> None:
        self.lock = lock or threading.Lock()
        self.histogram = ValueFile(folder / f"histogram_{PREFIX}_{pid}.db")
        self.counter = ValueFile(folder / f"counter_{PREFIX}_{pid}.db")
        self.gauge = ValueFile(folder / f"gauge_livesum_{PREFIX}_{pid}.db")
        name, doc = _name_and_help(IN_FLIGHT)
        self._in_flight = self.gauge.index(mmap_key(name, name, [], [], doc).encode())
        self._requests: dict[tuple[str, str, int], tuple[int, ...]] = {}
        self._sql: dict[str, tuple[int, int]] = {}

    def started(self) -> None:
        """One more request in flight (hold `lock`)."""
        self.gauge.values[self._in_flight] += 1.0

    def finished(
        self,
        endpoint: str,
        method: str,
        status: int,
        seconds: float,
        statements: int,
        sql_seconds: float,
        in_flight: bool = True,
    ) -> None:
        """One request served (hold `lock`): out of flight (when `started` counted it), into
        its histogram and its route's SQL."""
        if in_flight:
            self.gauge.values[self._in_flight] -= 1.0
        slots = self._requests.get((endpoint, method, status))
        if slots is None:
            slots = self._new_request(endpoint, method, status)
        values = self.histogram.values
        values[slots[bisect_left(_BOUNDS, seconds)]] += 1.0
        values[slots[-1]] += seconds
        if statements:
            pair = self._sql.get(endpoint)
            if pair is None:
                pair = self._new_sql(endpoint)
            values = self.counter.values
            values[pair[0]] += statements
            values[pair[1]] += sql_seconds

    def _new_request(self, endpoint: str, method: str, status: int) -> tuple[int, ...]:
        """The histogram's entries of a new label set, as prometheus_client keys them."""
        name, doc = _name_and_help(REQUEST_SECONDS)
        labels = [endpoint, method, str(status)]
        names = [*REQUEST_LABELS, "le"]
        index = self.histogram.index
        keys = [mmap_key(name, f"{name}_bucket", names, [*labels, le], doc) for le in _LE]
        keys.append(mmap_key(name, f"{name}_sum", names[:-1], labels, doc))
        slots = tuple(index(key.encode()) for key in keys)
        self._requests[(endpoint, method, status)] = slots
        return slots

    def _new_sql(self, endpoint: str) -> tuple[int, int]:
        pair = tuple(
            self.counter.index(
                mmap_key(name, f"{name}_total", ["endpoint"], [endpoint], doc).encode()
            )
            for name, doc in map(_name_and_help, (SQL_STATEMENTS, SQL_SECONDS))
        )
        self._sql[endpoint] = pair[0], pair[1]
        return self._sql[endpoint]

    def close(self) -> None:
        """Close the files after their last use (they stay, for the sweep to fold once this
        process is gone). Takes no lock: a forked child closes its parent's, whose lock a
        thread of the parent may have held at the fork."""
        for file in (self.histogram, self.counter, self.gauge):
            file.close()


class RegistryValues:
    """The same series in prometheus_client's in-memory metrics (one process, no folder)."""

    def started(self) -> None:
        """One more request in flight."""
        IN_FLIGHT.inc()

    def finished(
        self,
        endpoint: str,
        method: str,
        status: int,
        seconds: float,
        statements: int,
        sql_seconds: float,
        in_flight: bool = True,
    ) -> None:
        """One request served (out of flight when `started` counted it)."""
        if in_flight:
            IN_FLIGHT.dec()
        REQUEST_SECONDS.labels(endpoint, method, str(status)).observe(seconds)
        if statements:
            SQL_STATEMENTS.labels(endpoint).inc(statements)
            SQL_SECONDS.labels(endpoint).inc(sql_seconds)

    def close(self) -> None:
        """Nothing to close."""


def for_process(folder: Path | None, lock: threading.Lock) -> FileValues | RegistryValues:
    """Where this process's layer writes: its own files in its group's folder, when it has one."""
    return RegistryValues() if folder is None else FileValues(folder, os.getpid(), lock)
