"""The OpenAPI 3.1 document, generated from the routes' `@operation`s, and its docs page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import flask_swagger_ui
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    render_template_string,
    request,
    send_from_directory,
)
from flask.typing import ResponseReturnValue
from pydantic import BaseModel
from werkzeug.routing import Rule

from todoscale.api import schemas
from todoscale.api.operation import Operation, declared
from todoscale.api.schemas import NO_NUL_PATTERN

bp = Blueprint("openapi", __name__)

_SWAGGER_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
_EXTENSION = "todoscale.openapi"  # the app's document, in app.extensions: built once

_ERRORS = {
    400: "Not JSON, not an object, or a bad query parameter",
    401: "No valid credentials",
    403: "Visible but not yours to change",
    404: "Does not exist, or not visible to you",
    409: "Conflicts with the current state",
    412: "`If-Match` names a version that is no longer current",
    413: "Body too large",
    422: "Invalid values; `errors` names the fields",
    429: "Rate limited; wait for the seconds in `Retry-After`",
}
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
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
# A rule's variables, in order: <name> or <converter:name> (werkzeug's syntax).
_VARIABLE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_CONVERTER_TYPES = {"": "string", "string": "string", "path": "string", "int": "integer"}


def document(app: Flask, prefix: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app's routes under `prefix` (built once per app)."""
    built: dict[str, Any] | None = app.extensions.get(_EXTENSION)
    if built is None:
        built = app.extensions[_EXTENSION] = _build(app, prefix)
    return built


def _build(app: Flask, prefix: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    models: dict[str, type[BaseModel]] = {}
    for rule, declaration in _declared_routes(app, prefix):
        path, parameters = _path(rule, prefix)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                declaration, method.lower(), parameters
            )
        for model in (declaration.body, declaration.out):
            if isinstance(model, type):
                models.setdefault(model.__name__, model)
    models["Problem"] = schemas.Problem
    return {
        "openapi": "3.1.0",
        "info": {"title": "todoscale API", "version": "1.0.0"},
        "servers": [{"url": prefix}],
        "paths": paths,
        "components": {
            "schemas": _components(list(models.values())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }


def _declared_routes(app: Flask, prefix: str) -> list[tuple[Rule, Operation]]:
    """Every rule under `prefix` but the document's own, with its view's Operation."""
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if not rule.rule.startswith(f"{prefix}/") or view in (spec, docs, asset):
            continue
        declaration = declared(view)
        if declaration is None:
            raise LookupError(
                f"The route {rule.rule} ({rule.endpoint}) has no @operation: declare its "
                "contract on the view (todoscale.api.operation) so the document states it."
            )
        found.append((rule, declaration))
    return found


def _path(rule: Rule, prefix: str) -> tuple[str, list[dict[str, Any]]]:
    """A rule's path in OpenAPI's `{name}` syntax, and its path parameters."""
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": _CONVERTER_TYPES[converter]},
        }
        for converter, name in _VARIABLE.findall(rule.rule)
    ]
    return _VARIABLE.sub(r"{\2}", rule.rule.removeprefix(prefix)), parameters


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _success(out: type[BaseModel] | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(out, dict):
        return out
    success: dict[str, Any] = {"description": "Success"}
    if out is not None:
        success["content"] = {"application/json": {"schema": _ref(out)}}
    return success


def _operation(
    declaration: Operation, method: str, path_parameters: list[dict[str, Any]]
) -> dict[str, Any]:
    responses: dict[str, Any] = {str(declaration.ok): _success(declaration.out)}
    for code in declaration.fails:
        responses[str(code)] = {"description": _ERRORS[code], "content": _PROBLEM}
    operation: dict[str, Any] = {"summary": declaration.summary, "responses": responses}
    body = declaration.body
    if body is not None:
        content = body if isinstance(body, dict) else {"application/json": {"schema": _ref(body)}}
        operation["requestBody"] = {"required": True, "content": content}
    parameters = [*path_parameters, *declaration.query]
    if parameters:
        operation["parameters"] = parameters
    operation["security"] = [{declaration.security: []}] if declaration.security else []
    _limits_and_sizes(operation, method)
    operation["responses"] = dict(sorted(responses.items()))  # by status, however declared
    return operation


def _components(models: list[type[BaseModel]]) -> dict[str, Any]:
    components = {
        model.__name__: model.model_json_schema(ref_template="#/components/schemas/{model}")
        for model in models
    }
    for model in models:
        if issubclass(model, schemas.Schema):  # what comes in: NUL is refused in every string
            _refuse_nul(components[model.__name__])
    return components


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


def _limits_and_sizes(operation: dict[str, Any], method: str) -> None:
    """Add the answers every write can give: 429 (rate limited, with its headers), and 400
    and 413 where a JSON body is read."""
    responses = operation["responses"]
    if method in WRITE_METHODS:
        responses["429"] = {
            "description": _ERRORS[429],
            "headers": _RATE_HEADERS,
            "content": _PROBLEM,
        }
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        for code in (400, 413):
            responses.setdefault(str(code), {"description": _ERRORS[code], "content": _PROBLEM})


@bp.get("/openapi.json")
def spec() -> ResponseReturnValue:
    """The OpenAPI document of the API this blueprint is nested in."""
    api = current_app.blueprints[request.blueprints[-1]]
    return document(current_app, api.url_prefix or "")


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
