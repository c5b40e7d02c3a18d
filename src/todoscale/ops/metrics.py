"""The always-on per-request layer: latency, status and SQL per route rule, in-flight requests.

One WSGI wrapper around the Flask app does all of it, so a request pays one clock read at
each end, one histogram observation (cached label children), two gauge steps and one
dictionary update for the console's statistics; SQL statements are counted by two engine
listeners into a per-request context variable. Nothing here touches the database or the
network. The route rule is read from Flask's request when the response starts, so no Flask
hook is needed; unmatched paths are labelled `<unmatched>`, never by their raw path.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from todoscale.config import metrics_root
from todoscale.extensions import db
from todoscale.instruments import IN_FLIGHT, REQUEST_SECONDS, SQL_SECONDS, SQL_STATEMENTS
from todoscale.ops import groups, stats
from todoscale.ops.control import Controls

# Not `todoscale.request`: that logger writes exactly one line per request (ops.http).
logger = logging.getLogger("todoscale.slow")

EXTENSION = "todoscale.metrics"
UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A view may ask for its own Content-Security-Policy (a profile report runs its own script).
CSP_ENVIRON = "todoscale.csp"
PROFILER_ENVIRON = "todoscale.profiler"
# The URL rule of a response sent without Flask (a ready response replayed).
RULE_ENVIRON = "todoscale.rule"
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


def watched(rule: str | None = None) -> bool:
    """Whether profiling should look at the current request (cheap: no Flask proxy); given
    the request's URL rule, whether it may be profiled (it asked, or its endpoint is armed)."""
    state = _sql.get()
    if state is None or not state[2]:
        return False
    return rule is None or state[2] is True or state[2] == rule


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


class RequestMetrics:
    """The WSGI wrapper that measures every request (see the module's docstring)."""

    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.slow_seconds = app.config["SLOW_REQUEST_MS"] / 1000
        self.root = Path(metrics_root(app.config))
        self.recorder = stats.Recorder()
        self.controls = Controls(self.root, self.recorder)
        self._children: dict[tuple[str, str, int], Any] = {}
        self._sql_children: dict[str, tuple[Any, Any]] = {}
        self._pid = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self._pid != os.getpid():
            self._start_process()
        started = time.perf_counter()
        # SQL statements and seconds, and whether profiling should look at this request
        # (an order is armed, or the profile header came): all the profiler's hook reads.
        order = self.controls.order
        watch = PROFILE_HEADER_ENVIRON in environ or (order.endpoint if order else False)
        counts = [0, 0.0, watch]
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
            rule = getattr(request, "url_rule", None) or environ.get(RULE_ENVIRON)
            sent[0], sent[1], sent[2] = int(status[:3]), headers, rule
            return start_response(status, headers, exc_info)

        IN_FLIGHT.inc()
        try:
            return self.wsgi_app(environ, capture)
        finally:
            IN_FLIGHT.dec()
            _sql.reset(token)
            self._record(environ, sent, time.perf_counter() - started, counts)

    def _record(
        self, environ: dict[str, Any], sent: list[Any], seconds: float, counts: list[Any]
    ) -> None:
        status, headers, rule = sent
        endpoint = rule.rule if rule is not None else UNMATCHED
        method = environ.get("REQUEST_METHOD", "")
        if method not in METHODS:
            method = "OTHER"
        child = self._children.get((endpoint, method, status))
        if child is None:
            child = self._children[(endpoint, method, status)] = REQUEST_SECONDS.labels(
                endpoint, method, str(status)
            )
        child.observe(seconds)
        statements, sql_seconds, _watch = counts
        if statements:
            self._count_sql(endpoint, statements, sql_seconds)
        kept = self.recorder.add((endpoint, method), status, seconds, statements, sql_seconds)
        if kept or seconds > self.slow_seconds:
            slow = stats.SlowRequest(
                seconds=seconds,
                seq=0,
                at=time.time(),
                endpoint=endpoint,
                method=method,
                status=status,
                request_id=_request_id(headers),
                sql=statements,
                sql_seconds=sql_seconds,
                pid=os.getpid(),
            )
            if kept:
                self.recorder.keep_slow(slow)
            if seconds > self.slow_seconds:
                _log_slow(slow)
        profiler = environ.get(PROFILER_ENVIRON)
        if profiler is not None:
            profiler.finish(seconds, status)

    def _count_sql(self, endpoint: str, statements: int, sql_seconds: float) -> None:
        children = self._sql_children.get(endpoint)
        if children is None:
            children = self._sql_children[endpoint] = (
                SQL_STATEMENTS.labels(endpoint),
                SQL_SECONDS.labels(endpoint),
            )
        children[0].inc(statements)
        children[1].inc(sql_seconds)

    def _start_process(self) -> None:
        """First request of this process (after any fork): describe it, start its thread."""
        self._pid = os.getpid()
        self._children.clear()
        self._sql_children.clear()
        start_process(self.app)


def start_process(app: Flask) -> None:
    """Announce this process in its group, sweep dead workers' files, start the control thread
    (the metrics wrapper does it at a process's first request; a Celery pool process at start)."""
    metrics = of(app)
    root, controls = metrics.root, metrics.controls
    folder = groups.current_group()
    if folder is not None:
        try:
            groups.announce(folder, os.getpid(), {"kind": kind_of_server(), "started": time.time()})
            groups.sweep(root)
        except OSError:
            logger.exception("could not register this process in %s", folder)
    controls.poll()  # a new process knows the armed orders from its first request on
    controls.start(service_name())


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


def of(app: Flask) -> RequestMetrics:
    """The app's metrics wrapper."""
    metrics: RequestMetrics = app.extensions[EXTENSION]
    return metrics


def init_app(app: Flask) -> None:
    """Wrap the app in the metrics layer and count SQL statements per request (unless
    TODOSCALE_OBSERVE is off: then the app is left as it is, and no listener is added)."""
    metrics = RequestMetrics(app, app.wsgi_app)
    app.extensions[EXTENSION] = metrics  # its folder and statistics serve /metrics, the console
    if not app.config["OBSERVE"]:
        return
    app.wsgi_app = metrics  # type: ignore[method-assign]
    with app.app_context():
        engine: Engine = db.engine
    if not event.contains(engine, "before_cursor_execute", _before_execute):
        event.listen(engine, "before_cursor_execute", _before_execute)
        event.listen(engine, "after_cursor_execute", _after_execute)
