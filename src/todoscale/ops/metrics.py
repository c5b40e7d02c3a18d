"""The always-on per-request layer: latency, status and SQL per route rule, in-flight requests.

One WSGI wrapper around the Flask app does all of it, so a request pays one clock read at
each end, four values added in place in this process's memory-mapped files (`values`: the
histogram's bucket and sum, in-flight up and down) and one dictionary update for the
console's statistics, under one lock it never waits for (`Ledger`); SQL statements are
counted by two engine listeners into a per-request context variable. Nothing here touches
the database or the network. The route rule is read from Flask's request when the response
starts, so no Flask hook is needed; unmatched paths are labelled `<unmatched>`, never by
their raw path. A ready response (`ready`, in front of this wrapper) is counted by one call,
`RequestMetrics.replayed`: its histogram and statistics in one write, not in flight.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from todoscale.config import metrics_root
from todoscale.extensions import db
from todoscale.ops import groups, stats, values
from todoscale.ops.control import Controls

# Not `todoscale.request`: that logger writes exactly one line per request (ops.http).
logger = logging.getLogger("todoscale.slow")

EXTENSION = "todoscale.metrics"
UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A view may ask for its own Content-Security-Policy (a profile report runs its own script).
CSP_ENVIRON = "todoscale.csp"
PROFILER_ENVIRON = "todoscale.profiler"
PROFILE_HEADER_ENVIRON = "HTTP_X_TODOSCALE_PROFILE"
_CSP = "Content-Security-Policy"

# [statements, seconds, watch] of the request being served by this thread or greenlet; watch
# is True when the request asks for its profile, the armed order's endpoint while one is
# armed, else False.
_sql: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("sql", default=None)

StartResponse = Callable[..., Any]


def _before_execute(
    conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: Any
) -> None:
    if _sql.get() is not None:
        context._todoscale_started = time.perf_counter()


def _after_execute(
    conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: Any
) -> None:
    counts = _sql.get()
    if counts is not None:
        counts[0] += 1
        counts[1] += time.perf_counter() - getattr(
            context, "_todoscale_started", time.perf_counter()
        )


def watched() -> bool:
    """Whether profiling should look at the current request (cheap: no Flask proxy)."""
    state = _sql.get()
    return state is not None and bool(state[2])


def sql_counts() -> tuple[int, float]:
    """Statements and seconds of SQL so far in the current request (0, 0 outside one)."""
    counts = _sql.get()
    return (counts[0], counts[1]) if counts is not None else (0, 0.0)


def kind_of_server() -> str:
    """Which server runs this process, from what it imported."""
    for name in ("granian", "gunicorn", "celery"):
        if name in sys.modules:
            return name
    return "werkzeug" if "werkzeug.serving" in sys.modules else "python"


# A request's end as the ledger writes it: endpoint, method, status, seconds, SQL statements
# and SQL seconds; an entry of its queue is a start (None) or an end with the request when
# it may be one of the slowest, and whether its start was counted in flight.
Record = tuple[str, str, int, float, int, float]
Entry = tuple[Record, "stats.SlowRequest | None", bool] | None


class Ledger:
    """Where requests' starts and ends are written: this process's values and statistics,
    under their one lock, which a request never waits for.

    Waiting for a lock that another thread holds when the GIL passes to a third makes the
    threads queue behind each other (a lock convoy): with 4 threads, as a granian worker
    runs, the layer cost 15-25 us a request instead of 3 in some rounds. So a start or end
    that finds the lock taken goes into a queue (a deque's append is atomic), and its
    thread tries the lock once more; each writer looks at the queue again once it has let
    the lock go, so a record never waits for a later request. The queue is written first,
    in order, so a start is written before its end. The lock's other users (the minute's
    statistics handed over, the console's look at them) do not look again: the control
    thread writes the queue every second after them."""

    def __init__(self, sink: values.FileValues | values.RegistryValues,
                 recorder: stats.Recorder) -> None:  # fmt: skip
        self.sink = sink
        self.recorder = recorder
        self.lock = recorder.lock
        self._queue: deque[Entry] = deque()

    def started(self) -> None:
        """One more request in flight."""
        self._put(None)

    def finished(
        self, record: Record, slow: stats.SlowRequest | None = None, in_flight: bool = True
    ) -> None:
        """One request served; `slow` when it may be one of the slowest of the minute;
        `in_flight` when its start was written (`started`), else it is counted in one write."""
        self._put((record, slow, in_flight))

    def _put(self, entry: Entry) -> None:
        queue, lock = self._queue, self.lock
        if lock.acquire(blocking=False):  # the common case: written at once, nothing queued
            try:
                if queue:
                    self._drain()
                self._write(entry)
            finally:
                lock.release()
            if not queue:
                return
        else:
            queue.append(entry)
        self._write_if_free()

    def flush(self) -> None:
        """Write what waits in the queue, waiting for the lock (the control thread)."""
        with self.lock:
            self._drain()

    def _write_if_free(self) -> None:
        queue, lock = self._queue, self.lock
        while queue and lock.acquire(blocking=False):
            try:
                self._drain()
            finally:
                lock.release()

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            self._write(queue.popleft())

    def _write(self, entry: Entry) -> None:
        if entry is None:
            self.sink.started()
            return
        (endpoint, method, status, seconds, statements, sql_seconds), slow, in_flight = entry
        self.sink.finished(endpoint, method, status, seconds, statements, sql_seconds, in_flight)
        self.recorder.add((endpoint, method), status, seconds, statements, sql_seconds)
        if slow is not None:
            self.recorder.keep_slow(slow)


class RequestMetrics:
    """The WSGI wrapper that measures every request (see the module's docstring)."""

    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.slow_seconds = app.config["SLOW_REQUEST_MS"] / 1000
        self.root = Path(metrics_root(app.config))
        # One lock for the request's values and its statistics (see `Ledger`).
        self.lock = threading.Lock()
        self.recorder = stats.Recorder(self.lock)
        self.controls = Controls(self.root, self.recorder)
        # Where this process writes its values: opened at its first request (after any fork).
        self.ledger: Ledger | None = None
        self._starting = threading.Lock()
        _wrappers.add(self)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        ledger = self.ledger
        if ledger is None:
            ledger = self._start_process()
        started = time.perf_counter()
        # SQL statements and seconds, and whether profiling should look at this request
        # (an order is armed, or the profile header came): all the profiler's hook reads.
        counts: list[Any] = [0, 0.0, self._watch(environ)]
        token = _sql.set(counts)
        sent: list[Any] = [500, (), None]

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            csp = environ.get(CSP_ENVIRON)
            if csp is not None:
                headers = [(key, value) for key, value in headers if key != _CSP]
                headers.append((_CSP, csp))
            # Called inside the request context: Flask's request (in the environ) still holds
            # the matched rule; it is cleared when the context ends.
            request = environ.get("werkzeug.request")
            rule = getattr(request, "url_rule", None)
            sent[0], sent[1], sent[2] = int(status[:3]), headers, rule
            return start_response(status, headers, exc_info)

        ledger.started()
        try:
            return self.wsgi_app(environ, capture)
        finally:
            seconds = time.perf_counter() - started
            _sql.reset(token)
            status, _headers, rule = sent
            endpoint = rule.rule if rule is not None else UNMATCHED
            method = environ.get("REQUEST_METHOD", "")
            if method not in METHODS:
                method = "OTHER"
            statements, sql_seconds, _watch = counts
            slow = None
            kept = self.recorder.may_keep(seconds)
            if kept or seconds > self.slow_seconds:
                rid = _request_id(sent[1])
                slow = self._slow(endpoint, method, status, rid, seconds, statements, sql_seconds)
            record = (endpoint, method, status, seconds, statements, sql_seconds)
            ledger.finished(record, slow if kept else None)
            profiler = environ.get(PROFILER_ENVIRON)
            if profiler is not None:
                profiler.finish(seconds, status)

    def replayed(self, endpoint: str | None, status: int, seconds: float, request_id: str) -> None:
        """Count a GET answered in front of this wrapper (a ready response replayed, which
        runs no SQL): its histogram and statistics in one write. It is not counted in flight:
        it is served in a few microseconds without waiting for anything, and writing its
        start and its end cost two more turns of the lock than all the rest (measured)."""
        ledger = self.ledger
        if ledger is None:
            ledger = self._start_process()
        endpoint = endpoint or UNMATCHED
        slow = None
        kept = self.recorder.may_keep(seconds)
        if kept or seconds > self.slow_seconds:
            slow = self._slow(endpoint, "GET", status, request_id, seconds, 0, 0.0)
        ledger.finished((endpoint, "GET", status, seconds, 0, 0.0), slow if kept else None, False)

    def _watch(self, environ: dict[str, Any]) -> bool | str:
        """What profiling looks at in this request: True when it asks for its profile (the
        header), else the endpoint an order is armed on, else False."""
        order = self.controls.order
        return PROFILE_HEADER_ENVIRON in environ or (order.endpoint if order else False)

    def watches(self, environ: dict[str, Any], endpoint: str | None) -> bool:
        """Whether a request of `endpoint` must run to be profiled (it asks for its profile,
        or an order is armed on its endpoint), for what answers in front of this wrapper."""
        watch = self._watch(environ)
        return watch is True or (watch is not False and watch == endpoint)

    def _slow(
        self,
        endpoint: str,
        method: str,
        status: int,
        request_id: str,
        seconds: float,
        sql: int,
        sql_seconds: float,
    ) -> stats.SlowRequest:
        """A request that may be one of the slowest of the minute, or is over the slow
        threshold (then logged)."""
        slow = stats.SlowRequest(
            seconds=seconds,
            seq=0,
            at=time.time(),
            endpoint=endpoint,
            method=method,
            status=status,
            request_id=request_id,
            sql=sql,
            sql_seconds=sql_seconds,
            pid=os.getpid(),
        )
        if seconds > self.slow_seconds:
            _log_slow(slow)
        return slow

    def _start_process(self) -> Ledger:
        """First request of this process (after any fork): describe it, start its thread."""
        with self._starting:  # the first requests of several threads: one set of files
            if self.ledger is None:
                sink = values.for_process(groups.current_group(), self.lock)
                self.ledger = Ledger(sink, self.recorder)
                self.controls.ledger = self.ledger
                start_process(self.app)
            return self.ledger

    def forget_process(self) -> None:
        """In a forked child: the parent's files are not this process's."""
        self._starting = threading.Lock()  # the parent's may have been held at the fork
        if self.ledger is not None:  # the parent's files and queue are the parent's
            self.ledger.sink.close()
        self.ledger = self.controls.ledger = None


# Every wrapper of this process, so that a forked child forgets its parent's files before
# it runs anything (a child writing into its parent's mapped files would corrupt them).
_wrappers: weakref.WeakSet[RequestMetrics] = weakref.WeakSet()


_fork_hook: list[bool] = []


def _after_fork() -> None:
    for wrapper in list(_wrappers):
        wrapper.forget_process()


def start_process(app: Flask) -> None:
    """Announce this process in its group, start the control thread, which sweeps dead
    workers' files off the request's path (the metrics wrapper does it at a process's first
    request; a Celery pool process at start)."""
    controls = of(app).controls
    folder = groups.current_group()
    if folder is not None:
        try:
            groups.announce(folder, os.getpid(), {"kind": kind_of_server(), "started": time.time()})
        except OSError:
            logger.exception("could not register this process in %s", folder)
    controls.poll()  # a new process knows the armed orders from its first request on
    controls.start(service_name(), folder)


def _log_slow(slow: stats.SlowRequest) -> None:
    logger.warning(
        "slow request",
        extra={
            "request_id": slow.request_id,
            "endpoint": slow.endpoint,
            "method": slow.method,
            "status": slow.status,
            "duration_ms": round(slow.seconds * 1000, 3),
            "sql_statements": slow.sql,
            "sql_ms": round(slow.sql_seconds * 1000, 3),
        },
    )


def _request_id(headers: Iterable[tuple[str, str]]) -> str:
    for key, value in headers:
        if key == "X-Request-ID":
            return value
    return ""


def service_name() -> str:
    """This process's group (its folder's name), or `local` for a process outside any."""
    folder = groups.current_group()
    return folder.name if folder is not None else "local"


def observing(app: Flask) -> RequestMetrics | None:
    """The app's metrics wrapper while it measures requests (TODOSCALE_OBSERVE on), else None."""
    metrics = of(app)
    return metrics if app.config["OBSERVE"] else None


def of(app: Flask) -> RequestMetrics:
    """The app's metrics wrapper."""
    metrics: RequestMetrics = app.extensions[EXTENSION]
    return metrics


def init_app(app: Flask) -> None:
    """Wrap the app in the metrics layer and count SQL statements per request (unless
    TODOSCALE_OBSERVE is off: then the app is left as it is, and no listener is added)."""
    metrics = RequestMetrics(app, app.wsgi_app)
    if not _fork_hook:  # once per process, however many apps it builds
        os.register_at_fork(after_in_child=_after_fork)
        _fork_hook.append(True)
    app.extensions[EXTENSION] = metrics  # its folder and statistics serve /metrics, the console
    if not app.config["OBSERVE"]:
        return
    app.wsgi_app = metrics  # type: ignore[method-assign]
    with app.app_context():
        engine: Engine = db.engine
    if not event.contains(engine, "before_cursor_execute", _before_execute):
        event.listen(engine, "before_cursor_execute", _before_execute)
        event.listen(engine, "after_cursor_execute", _after_execute)
