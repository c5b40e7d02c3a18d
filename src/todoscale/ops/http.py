"""Per-request plumbing: proxy handling, request ids, security headers, the request log."""

from __future__ import annotations

import functools
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

logger = logging.getLogger("todoscale.request")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

CSP = (
    "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'; "
    "form-action 'self'; img-src 'self' data:; connect-src 'self'"
)
_SECURITY_HEADERS = [
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
]
_HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
# Anything but a file sent from disk may carry someone's data: no cache on the way keeps it.
_NO_STORE = ("Cache-Control", "no-store")


def _default_id() -> str:
    # Per request, not at import: each forked worker has its own pid.
    return _instance_id(os.getpid())


@functools.cache
def _instance_id(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"


def _begin() -> None:
    g.started = time.perf_counter()
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _finish(response: Response) -> Response:
    # No view sets these, so they are appended, not looked up first: on a small response
    # werkzeug's per-header lookup cost more than the view.
    response.headers.extend(_SECURITY_HEADERS)
    if not response.direct_passthrough:  # files (static, the docs' assets) set their own
        response.headers.add(*_NO_STORE)
    response.headers.add("X-Request-ID", g.request_id)
    instance_id = current_app.config["INSTANCE_ID"]
    if instance_id is None:
        instance_id = _default_id()
    if instance_id:  # production's default is "": no host name or pid goes out
        response.headers.add("X-Instance-ID", instance_id)
    if current_app.config["HSTS"]:
        response.headers.add(*_HSTS)
    if current_app.config["REQUEST_LOG"]:
        user = g.get("user")
        logger.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.started) * 1000, 3),
                "user_id": user.id if user is not None else None,
                "remote_addr": request.remote_addr,
            },
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


def fixed_headers(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The security headers of every dynamic response, for answers made outside Flask."""
    return [*_SECURITY_HEADERS, _NO_STORE, *([_HSTS] if config["HSTS"] else [])]


def init_app(app: Flask) -> None:
    """Trust exactly the configured number of proxies, then hook every request."""
    _warn_of_host_headers(app)
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )
    app.before_request(_begin)
    app.after_request(_finish)
