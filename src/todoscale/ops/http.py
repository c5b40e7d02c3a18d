"""Per-request plumbing: proxy handling, request ids, security headers, the request log."""

from __future__ import annotations

import functools
import itertools
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from todoscale.cache import replay

logger = logging.getLogger("todoscale.request")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

CSP = (
    "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'; "
    "form-action 'self'; img-src 'self' data:; connect-src 'self'"
)
_SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
]
_HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
# Anything but a file sent from disk may carry someone's data: no cache on the way keeps it.
_NO_STORE = ("Cache-Control", "no-store")
HEADERS_EXTENSION = "todoscale.security_headers"


def security_headers(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The headers every response carries: the CSP (which may reach a Socket.IO service on
    its own port of the page's host), the other security headers, HSTS in production."""
    csp = CSP
    port = config.get("SOCKETIO_PORT")
    if port:
        csp += "".join(f" {scheme}://*:{port}" for scheme in ("http", "https", "ws", "wss"))
    headers = [("Content-Security-Policy", csp), *_SECURITY_HEADERS]
    if config.get("HSTS"):
        headers.append(_HSTS)
    return headers


def fixed_headers(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The security headers of every dynamic response, for answers made outside Flask."""
    return [*security_headers(config), _NO_STORE]


def _default_id() -> str:
    # Per request, not at import: each forked worker has its own pid.
    return _instance_id(os.getpid())


@functools.cache
def _instance_id(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"


class RequestIds:
    """Unique request ids without a system call each: a random prefix drawn once per process
    (again after a fork), then a counter. uuid4 read the OS's random source every time,
    which under granian's threads cost a wait for the GIL on every request (measured)."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(10)
        self._counter = itertools.count()

    def next(self) -> str:
        """A new id: 32 hex digits, like a uuid4's."""
        return f"{self._prefix}{next(self._counter):012x}"


_ids = RequestIds()


def request_id(given: str) -> str:
    """The id of a request: the client's `X-Request-ID` when well formed, else a new one."""
    return given if _REQUEST_ID.fullmatch(given) else _ids.next()


def log_request(
    *,
    method: str,
    path: str,
    status: int,
    started: float,
    request_id: str,
    user_id: str | None,
    remote_addr: str | None,
) -> None:
    """Write the one line of a finished request (every request passes here, replayed or not)."""
    logger.info(
        "request",
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "user_id": user_id,
            "remote_addr": remote_addr,
            "request_id": request_id,
        },
    )


def _begin() -> None:
    g.started = time.perf_counter()
    g.request_id = request_id(request.headers.get("X-Request-ID", ""))


def _finish(response: Response) -> Response:
    # No view sets these, so they are appended, not looked up first: on a small response
    # werkzeug's per-header lookup cost more than the view.
    response.headers.extend(current_app.extensions[HEADERS_EXTENSION])
    if not response.direct_passthrough:  # files (static, the docs' assets) set their own
        response.headers.add(*_NO_STORE)
    response.headers.add("X-Request-ID", g.request_id)
    instance_id = current_app.config["INSTANCE_ID"]
    if instance_id is None:
        instance_id = _default_id()
    if instance_id:  # production's default is "": no host name or pid goes out
        response.headers.add("X-Instance-ID", instance_id)
    user = g.get("user")
    user_id = user.id if user is not None else None
    recording = replay.current()
    if recording is not None:
        recording.user_id = user_id  # a replay of this response logs the same user
    if current_app.config["REQUEST_LOG"]:
        log_request(
            method=request.method,
            path=request.path,
            status=response.status_code,
            started=g.started,
            request_id=g.request_id,
            user_id=user_id,
            remote_addr=request.remote_addr,
        )
    return response


def _warn_of_host_headers(app: Flask) -> None:
    if app.config["ENV_NAME"] == "production" and not (
        app.config["PUBLIC_URL"] or app.config["TRUSTED_HOSTS"]
    ):
        logging.getLogger(__name__).warning(
            "Neither TODOSCALE_PUBLIC_URL nor TODOSCALE_TRUSTED_HOSTS is set: absolute URLs "
            "(Location headers, the url of resources, live updates) follow the Host header a "
            "client sends. Set TODOSCALE_PUBLIC_URL=https://your.host (the address users "
            "reach), or TODOSCALE_TRUSTED_HOSTS=your.host."
        )


def init_app(app: Flask) -> None:
    """Trust exactly the configured number of proxies, then hook every request."""
    _warn_of_host_headers(app)
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )
    app.extensions[HEADERS_EXTENSION] = security_headers(app.config)
    app.before_request(_begin)
    app.after_request(_finish)
