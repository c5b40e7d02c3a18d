"""The one place where exceptions become responses: RFC 9457 problem+json."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from flask import Flask, Response, current_app
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from todoscale.exceptions import AuthenticationError, TodoscaleError, ValidationError

logger = logging.getLogger(__name__)


def problem(status: int, detail: str, *, errors: dict[str, list[str]] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """An `application/problem+json` response."""
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase,
                            "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return current_app.response_class(
        response=orjson.dumps(body), status=status, headers=headers,
        mimetype="application/problem+json",
    )


def _domain_error(exc: TodoscaleError) -> Response:
    headers = {}
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = f'{exc.scheme} realm="todoscale"'
    errors = exc.errors if isinstance(exc, ValidationError) else None
    return problem(exc.status, exc.detail, errors=errors, headers=headers)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers = dict(exc.get_headers())
    headers.pop("Content-Type", None)
    detail = exc.description or HTTPStatus(status).description
    if isinstance(exc, RequestEntityTooLarge):
        detail = f"The body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes."
    elif isinstance(exc, MethodNotAllowed):
        detail = "This method is not allowed here; 'Allow' lists the ones that are."
    return problem(status, detail, headers=headers)


def _unexpected(exc: Exception) -> Response:
    # Process boundary: anything unhandled is logged with its traceback and answered
    # as a 500 problem, never as an HTML stack trace.
    logger.exception("unhandled error")
    return problem(500, "Something went wrong on our side; it has been logged.")


def init_app(app: Flask) -> None:
    """Register the handlers."""
    app.register_error_handler(TodoscaleError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
