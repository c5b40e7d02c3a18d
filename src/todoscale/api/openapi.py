"""The OpenAPI 3.1 document, generated from the pydantic schemas, and its docs page."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import flask_swagger_ui
from flask import Blueprint, Response, render_template_string, send_from_directory
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

from todoscale.api import schemas
from todoscale.api.schemas import NO_NUL_PATTERN
from todoscale.config import Settings
from todoscale.services.jobs import MAX_IMPORT_BYTES
from todoscale.services.pagination import CURSOR_MAX
from todoscale.services.search import QUERY_MAX, TERMS_MAX

bp = Blueprint("openapi", __name__)

CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"
_DEFAULT_MAX_ROWS = Settings.model_fields["IMPORT_MAX_ROWS"].default

_SWAGGER_DIST = Path(flask_swagger_ui.__file__).parent / "dist"

_MODELS: list[type[BaseModel]] = [
    schemas.UserCreate,
    schemas.UserRead,
    schemas.TokenRead,
    schemas.ListCreate,
    schemas.ListUpdate,
    schemas.ListRead,
    schemas.ListCollection,
    schemas.MemberCreate,
    schemas.TodoCreate,
    schemas.TodoUpdate,
    schemas.TodoRead,
    schemas.TodoPage,
    schemas.JobCreate,
    schemas.JobRead,
    schemas.Problem,
]

_ERRORS = {
    "400": "Not JSON, not an object, or a bad query parameter",
    "401": "No valid credentials",
    "403": "Visible but not yours to change",
    "404": "Does not exist, or not visible to you",
    "409": "Conflicts with the current state",
    "412": "`If-Match` names a version that is no longer current",
    "413": "Body too large",
    "422": "Invalid values; `errors` names the fields",
    "429": "Rate limited; wait for the seconds in `Retry-After`",
}
# Every write is rate limited (per user, or per address without an account), and every JSON
# body is read up to TODOSCALE_MAX_JSON_BYTES: what ops.limits and api.body enforce.
WRITE_METHODS = ("post", "patch", "put", "delete")
_RATE_HEADERS = {
    name: {"description": description, "schema": {"type": "integer"}}
    for name, description in (
        ("Retry-After", "Seconds to wait before trying again"),
        ("RateLimit-Limit", "Requests allowed in the window"),
        ("RateLimit-Remaining", "Requests left in the window"),
        ("RateLimit-Reset", "Seconds until the window resets"),
    )
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(model)}}}


def _op(
    summary: str,
    *,
    ok: str,
    out: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    fails: str = "",
    auth: bool = True,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {ok: {"description": "Success", **(_json(out) if out else {})}}
    for code in fails.split():
        problem = {"application/problem+json": {"schema": _ref(schemas.Problem)}}
        responses[code] = {"description": _ERRORS[code], "content": problem}
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
    if params:
        operation["parameters"] = params
    operation["security"] = [{"bearer": []}] if auth else []
    return operation


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _paths() -> dict[str, Any]:
    s = schemas
    list_id, todo_id = _path_param("list_id"), _path_param("todo_id")
    page_params = [
        _query("list_id", {"type": "string"}, "Only this list's todos"),
        _query("completed", {"type": "boolean"}, "Only done (true) or open (false) todos"),
        _query(
            "limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}, "Page size"
        ),
        _query(
            "cursor",
            {"type": "string", "pattern": CURSOR_PATTERN, "maxLength": CURSOR_MAX},
            "`next_cursor` of the previous page, as it was given: opaque (unpadded base64url); "
            "an empty one is none, and one this server did not issue is 400",
        ),
        _query(
            "q",
            {"type": "string", "maxLength": QUERY_MAX},
            "Full-text search: only todos whose title or notes hold every word of `q` "
            "(whole words, any case; the words are its runs of letters and digits, the first "
            f"{TERMS_MAX} of them). Titles only when notes are encrypted at rest. An empty `q` "
            "is no search; one without a letter or digit, or longer than "
            f"{QUERY_MAX} characters, is 400.",
        ),
    ]
    return {
        "/users": {
            "post": _op(
                "Register",
                ok="201",
                out=s.UserRead,
                body=s.UserCreate,
                fails="400 409 413 422",
                auth=False,
            )
        },
        "/users/me": {"get": _op("The caller's account", ok="200", out=s.UserRead, fails="401")},
        "/users/{user_id}": {
            "get": _op(
                "A user: only the caller's own account",
                ok="200",
                out=s.UserRead,
                fails="401 404",
                params=[_path_param("user_id")],
            )
        },
        "/tokens": {
            "post": {
                **_op("Issue a token (HTTP Basic)", ok="201", out=s.TokenRead, fails="401"),
                "security": [{"basic": []}],
            },
            "delete": _op(
                "Revoke the bearer token, or every token of its user",
                ok="204",
                fails="400 401",
                params=[
                    _query(
                        "all",
                        {"type": "boolean", "default": False},
                        "true: revoke every token of the user, this one too; their Socket.IO "
                        "connections close",
                    )
                ],
            ),
        },
        "/lists": {
            "get": _op("Lists the caller can see", ok="200", out=s.ListCollection, fails="401"),
            "post": _op(
                "Create a list", ok="201", out=s.ListRead, body=s.ListCreate, fails="400 401 422"
            ),
        },
        "/lists/{list_id}": {
            "get": _op("One list", ok="200", out=s.ListRead, fails="401 404", params=[list_id]),
            "patch": _op(
                "Rename a list",
                ok="200",
                out=s.ListRead,
                body=s.ListUpdate,
                fails="400 401 403 404 422",
                params=[list_id],
            ),
            "delete": _op(
                "Delete a list and its todos", ok="204", fails="401 403 404 409", params=[list_id]
            ),
        },
        "/lists/{list_id}/members": {
            "post": _op(
                "Share a list",
                ok="201",
                out=s.ListRead,
                body=s.MemberCreate,
                fails="400 401 403 404 409 422",
                params=[list_id],
            ),
        },
        "/lists/{list_id}/members/{username}": {
            "delete": _op(
                "Remove a member (409: the owner cannot leave their own list)",
                ok="204",
                fails="401 403 404 409",
                params=[list_id, _path_param("username")],
            ),
        },
        "/todos": {
            "get": _op(
                "A page of todos, newest first",
                ok="200",
                out=s.TodoPage,
                fails="400 401 404",
                params=page_params,
            ),
            "post": _op(
                "Add a todo",
                ok="201",
                out=s.TodoRead,
                body=s.TodoCreate,
                fails="400 401 404 413 422",
            ),
        },
        "/todos/{todo_id}": {
            "get": _op("One todo", ok="200", out=s.TodoRead, fails="401 404", params=[todo_id]),
            "patch": _op(
                "Change a todo",
                ok="200",
                out=s.TodoRead,
                body=s.TodoUpdate,
                fails="400 401 404 412 422",
                params=[todo_id],
            ),
            "delete": _op("Delete a todo", ok="204", fails="401 404", params=[todo_id]),
        },
        **_job_paths(),
    }


def _job_paths() -> dict[str, Any]:
    s = schemas
    job_id = _path_param("job_id")
    upload = {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "list_id"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "A CSV or JSON file as an export wrote it: at most "
                        f"{MAX_IMPORT_BYTES} bytes and TODOSCALE_IMPORT_MAX_ROWS rows "
                        f"({_DEFAULT_MAX_ROWS:,} unless configured); more is 413 or 422",
                    },
                    "list_id": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 64,
                        "pattern": NO_NUL_PATTERN,
                        "description": "The list the rows go into (required)",
                    },
                },
            }
        }
    }
    result = {
        "description": "The export file",
        "content": {"text/csv": {}, "application/json": {}},
    }
    get_result = _op("An export's file", ok="200", fails="401 404 409", params=[job_id])
    return {
        "/exports": {
            "post": _op(
                "Queue an export (CSV or JSON)",
                ok="202",
                out=s.JobRead,
                body=s.JobCreate,
                fails="400 401 404 422",
            )
        },
        "/imports": {
            "post": {
                **_op(
                    "Queue an import of an export file",
                    ok="202",
                    out=s.JobRead,
                    fails="401 404 413 422 429",
                ),
                "requestBody": {"required": True, "content": upload},
            }
        },
        "/jobs/{job_id}": {
            "get": _op(
                "One of the caller's jobs",
                ok="200",
                out=s.JobRead,
                fails="401 404",
                params=[job_id],
            )
        },
        "/jobs/{job_id}/result": {
            "get": {**get_result, "responses": {**get_result["responses"], "200": result}}
        },
    }


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API (built once per process)."""
    components = {
        model.__name__: model.model_json_schema(ref_template="#/components/schemas/{model}")
        for model in _MODELS
    }
    for model in _MODELS:
        if issubclass(model, schemas.Schema):  # what comes in: NUL is refused in every string
            _refuse_nul(components[model.__name__])
    paths = _paths()
    _limits_and_sizes(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "todoscale API", "version": "1.0.0"},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }


def _refuse_nul(schema: dict[str, Any]) -> None:
    """Give every string of a request schema without a pattern of its own the no-NUL one."""
    if schema.get("type") == "string" and "pattern" not in schema and "format" not in schema:
        schema["pattern"] = NO_NUL_PATTERN
    for value in schema.values():
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict | list):
            for child in children:
                if isinstance(child, dict):
                    _refuse_nul(child)


def _limits_and_sizes(paths: dict[str, Any]) -> None:
    """Add the answers every write can give: 429 (rate limited, with its headers), and 400
    and 413 where a JSON body is read."""
    for operations in paths.values():
        for method, operation in operations.items():
            responses = operation["responses"]
            problem = {"application/problem+json": {"schema": _ref(schemas.Problem)}}
            if method in WRITE_METHODS:
                responses["429"] = {
                    "description": _ERRORS["429"],
                    "headers": _RATE_HEADERS,
                    "content": problem,
                }
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                for code in ("400", "413"):
                    responses.setdefault(code, {"description": _ERRORS[code], "content": problem})


@bp.get("/openapi.json")
def spec() -> ResponseReturnValue:
    """The OpenAPI document."""
    return document()


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>todoscale API</title>
<link rel="stylesheet" href="{{ url_for('.asset', filename='swagger-ui.css') }}"></head>
<body><div id="swagger-ui" data-spec="{{ url_for('.spec') }}"></div>
<script src="{{ url_for('.asset', filename='swagger-ui-bundle.js') }}"></script>
<script src="{{ url_for('.asset', filename='docs-init.js') }}"></script>
</body></html>"""

# Loaded as a file, not inline, so the page works under a strict CSP (no 'unsafe-inline').
_DOCS_INIT = """window.ui = SwaggerUIBundle({
  url: document.getElementById('swagger-ui').dataset.spec, dom_id: '#swagger-ui'});"""


@bp.get("/docs")
def docs() -> ResponseReturnValue:
    """The human-readable API reference (Swagger UI, served by us)."""
    return render_template_string(_DOCS_PAGE)


@bp.get("/docs/assets/<path:filename>")
def asset(filename: str) -> ResponseReturnValue:
    """Swagger UI's files, from the flask-swagger-ui package (no CDN)."""
    if filename == "docs-init.js":
        return Response(_DOCS_INIT, mimetype="text/javascript")
    return send_from_directory(_SWAGGER_DIST, filename, max_age=86400)
