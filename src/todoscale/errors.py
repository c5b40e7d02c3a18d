"""The one place where exceptions become responses: RFC 9457 problem+json for the API,
a translated HTML page for the browser pages."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from flask import Flask, Response, current_app, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from todoscale.exceptions import AuthenticationError, TodoscaleError, ValidationError

logger = logging.getLogger(__name__)

# Paths answered with problem+json; everything else is a page a person reads.
API_PREFIX = "/api/"


def problem(
    status: int,
    detail: str,
    *,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An `application/problem+json` response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return current_app.response_class(
        response=orjson.dumps(body),
        status=status,
        headers=headers,
        mimetype="application/problem+json",
    )


def _respond(
    status: int,
    detail: str,
    *,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """problem+json under `/api/`, else the error page (the detail is for machines: the
    page says in the reader's language what the status means)."""
    if request.path.startswith(API_PREFIX):
        return problem(status, detail, errors=errors, headers=headers)
    return current_app.response_class(
        render_template("errors/error.html", status=status),
        status=status,
        headers=headers,
        mimetype="text/html",
    )


def _domain_error(exc: TodoscaleError) -> Response:
    headers = {}
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = f'{exc.scheme} realm="todoscale"'
    errors = exc.errors if isinstance(exc, ValidationError) else None
    return _respond(exc.status, exc.detail, errors=errors, headers=headers)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers = dict(exc.get_headers())
    headers.pop("Content-Type", None)
    detail = exc.description or HTTPStatus(status).description
    if isinstance(exc, RequestEntityTooLarge):
        detail = f"The body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes."
    elif isinstance(exc, MethodNotAllowed):
        detail = "This method is not allowed here; 'Allow' lists the ones that are."
    return _respond(status, detail, headers=headers)


# How a full disk reads in the drivers' messages: SQLite's SQLITE_FULL, PostgreSQL's
# SQLSTATE 53100 (disk_full: "could not extend file ... No space left on device").
_DISK_FULL = ("database or disk is full", "no space left on device", "could not extend file")
RETRY_SECONDS = "5"


def _database_error(exc: OperationalError) -> Response:
    # The database refused or could not be reached; the transaction was rolled back, so
    # nothing of the request was written. A full disk is 507 (RFC 4918: the server cannot
    # store what the request needs), anything else (locked, gone, restarting) 503: both say
    # when to try again, neither is a 500.
    message = str(exc.orig if exc.orig is not None else exc).lower()
    headers = {"Retry-After": RETRY_SECONDS}
    if any(sign in message for sign in _DISK_FULL) or getattr(exc.orig, "sqlstate", "") == "53100":
        logger.error("the database's disk is full: %s", message.splitlines()[0])
        return _respond(507, "The server's storage is full; nothing was written. Try again later.",
                        headers=headers)  # fmt: skip
    logger.error("the database is unavailable: %s", message.splitlines()[0] if message else "")
    return _respond(503, "The database is unavailable; nothing was written. Try again shortly.",
                    headers=headers)  # fmt: skip


def _unexpected(exc: Exception) -> Response:
    # Process boundary: anything unhandled is logged with its traceback and answered
    # as a 500 problem, never as an HTML stack trace.
    logger.exception("unhandled error")
    return _respond(500, "Something went wrong on our side; it has been logged.")


def init_app(app: Flask) -> None:
    """Register the handlers."""
    app.register_error_handler(TodoscaleError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OperationalError, _database_error)
    app.register_error_handler(Exception, _unexpected)
