"""Ready responses: a response kept as the bytes the app sent, and sent again while the
cached values it was built from still hold.

The reference read (the first page of a user's todos) is answered from the local cache
already; building its response around that (Flask's request, the hooks, JSON) cost three
times a bare Flask view. A view whose answer is a function of the request's key and of
local cache entries says so (`replay.replayable()`); its response is then kept, with the
scopes and stamps those entries were read against (`cache.replay`). The next identical
request is answered from here, before Flask, while those scopes still have those stamps
(checked in one read, as for any cache hit: a write to any of them since makes it a miss)
and nothing it depends on has expired (a token's lifetime, an entry's). It still gets its
own request id and its request log line; every other header is the one the app sent
(security headers, compression, `Vary`). Only successful GETs without cookies set,
conditional headers or ranges are kept, per process, at most MAX_ENTRIES of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask

from todoscale.cache import replay
from todoscale.cache.local import EXTENSION as LOCAL_CACHE
from todoscale.cache.local import LocalCache
from todoscale.cache.stamps import Stamps
from todoscale.ops.http import log_request, request_id
from todoscale.ops.metrics import RequestMetrics, observing

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

EXTENSION = "todoscale.ready"
MAX_ENTRIES = 1024
# A request carrying one of these asks for something else than the kept bytes.
_BYPASS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH", "HTTP_RANGE")
# What a view's answer may depend on besides the cache: who asks, where, in which encoding.
_KEY = (
    "PATH_INFO",
    "QUERY_STRING",
    "HTTP_AUTHORIZATION",
    "HTTP_HOST",
    "HTTP_ACCEPT_ENCODING",
    "SCRIPT_NAME",
    "wsgi.url_scheme",
)
_PER_REQUEST = frozenset({"x-request-id"})


@dataclass(frozen=True)
class Entry:
    """A kept response and what it was built from."""

    status: str
    code: int  # the status's number
    headers: list[tuple[str, str]]
    body: bytes
    stamps: Stamps
    until: float
    user_id: str | None
    # The matched URL rule's pattern: what a replay is counted under in the metrics and what
    # a profile order names (None when no rule matched).
    endpoint: str | None


class ReadyResponses:
    """WSGI middleware in front of the Flask app: replays kept responses, keeps new ones."""

    def __init__(
        self, app: WSGIApp, cache: LocalCache, *, log: bool, metrics: RequestMetrics | None = None
    ) -> None:
        self.app = app
        self.cache = cache
        self.log = log
        # The request layer behind this one (None when TODOSCALE_OBSERVE is off): a replay
        # never reaches it, so it is counted there in one call (`RequestMetrics.replayed`).
        self.metrics = metrics
        self.entries: dict[tuple[Any, ...], Entry] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "GET" or any(name in environ for name in _BYPASS):
            return self.app(environ, start_response)
        started = time.perf_counter()
        key = tuple(environ.get(name) for name in _KEY)
        entry = self.entries.get(key)
        if entry is not None and self._holds(entry):
            # A request that may be profiled (it asked, or its endpoint is armed) must run;
            # an order armed on another endpoint changes nothing here.
            metrics = self.metrics
            if metrics is None or not metrics.watches(environ, entry.endpoint):
                return self._replay(entry, started, environ, start_response)
            return self.app(environ, start_response)
        return self._keep(key, environ, start_response)

    def _holds(self, entry: Entry) -> bool:
        return time.time() < entry.until and self.cache.holds(entry.stamps)

    def _replay(
        self, entry: Entry, started: float, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        rid = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        start_response(entry.status, [*entry.headers, ("X-Request-ID", rid)])
        if self.log:
            log_request(
                method="GET",
                path=environ.get("PATH_INFO", ""),
                status=entry.code,
                started=started,
                request_id=rid,
                user_id=entry.user_id,
                remote_addr=environ.get("REMOTE_ADDR"),
            )
        if self.metrics is not None:
            self.metrics.replayed(entry.endpoint, entry.code, time.perf_counter() - started, rid)
        return [entry.body]

    def _keep(
        self, key: tuple[Any, ...], environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        sent: list[tuple[str, list[tuple[str, str]], str | None]] = []

        def capture(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            # Called inside the request context: Flask's request still holds its rule.
            rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
            sent.append((status, headers, rule.rule if rule is not None else None))
            return start_response(status, headers, *exc_info)

        with replay.recording() as recorded:
            body = self.app(environ, capture)
        if not (recorded.usable and sent and sent[0][0].startswith("200")):
            return body
        status, headers, endpoint = sent[0]
        if any(name.lower() == "set-cookie" for name, _ in headers):
            return body
        try:
            data = b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()
        if len(self.entries) >= MAX_ENTRIES:
            self.entries.clear()  # crude but bounded, as the local cache is
        self.entries[key] = Entry(
            status=status,
            code=int(status[:3]),
            headers=[(name, value) for name, value in headers if name.lower() not in _PER_REQUEST],
            body=data,
            stamps=tuple(recorded.stamps.items()),
            until=recorded.until,
            user_id=recorded.user_id,
            endpoint=endpoint,
        )
        return [data]


def init_app(app: Flask) -> None:
    """Put ready responses in front of the app (and of its request layer, which counts the
    replays), where there is a local cache to vouch."""
    cache = app.extensions.get(LOCAL_CACHE)
    if cache is not None:
        log = app.config["REQUEST_LOG"]
        middleware = ReadyResponses(app.wsgi_app, cache, log=log, metrics=observing(app))
        app.wsgi_app = app.extensions[EXTENSION] = middleware  # type: ignore[method-assign]
