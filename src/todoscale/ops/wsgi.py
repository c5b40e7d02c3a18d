"""Headers on the answers Flask never sees: Engine.IO answers `/socket.io/` itself, in
Flask-SocketIO's WSGI middleware, before any `after_request` hook could add to them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment


def with_headers(
    wsgi_app: WSGIApplication, prefix: str, headers: Sequence[tuple[str, str]]
) -> WSGIApplication:
    """`wsgi_app`, whose responses to paths under `prefix` also carry `headers`."""
    extra = list(headers)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(prefix):
            return wsgi_app(environ, start_response)

        def start(status: str, response_headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            return start_response(status, [*response_headers, *extra], *exc_info)

        return wsgi_app(environ, start)

    return app
