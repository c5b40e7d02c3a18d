"""/api/v1/openapi.json and /api/v1/docs."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest
from flask import Blueprint, Flask

import todoscale.api
from todoscale.api import openapi
from todoscale.api.operation import declared
from todoscale.api.operation import operation as declare

OPENAPI = "/api/v1/openapi.json"
UNDOCUMENTED = {"/api/v1/openapi.json", "/api/v1/docs"}


def _api_routes(app):
    """(OpenAPI path, method) of every API route of the app, in OpenAPI's `{param}` syntax."""
    routes = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule
        if not path.startswith("/api/v1/") or path in UNDOCUMENTED:
            continue
        if path.startswith("/api/v1/docs/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", path.removeprefix("/api/v1"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    return routes


def test_openapi_document_is_openapi_3_1(client):
    response = client.get(OPENAPI)

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"]
    assert document["servers"] == [{"url": "/api/v1"}]


def test_openapi_document_covers_every_api_route(app, client):
    document = client.get(OPENAPI).get_json()
    documented = {
        (path, method) for path, operations in document["paths"].items() for method in operations
    }

    routes = _api_routes(app)

    assert routes, "no API routes found"
    assert routes - documented == set()
    assert documented - routes == set()


def test_every_schema_reference_resolves(client):
    document = client.get(OPENAPI).get_json()
    schemas = document["components"]["schemas"]

    refs = set(re.findall(r'"\$ref": ?"#/components/schemas/([^"]+)"', client.get(OPENAPI).text))

    assert refs
    assert refs <= set(schemas)


def test_every_operation_documents_its_success_and_security(client):
    document = client.get(OPENAPI).get_json()
    schemes = set(document["components"]["securitySchemes"])

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["summary"], (path, method)
            assert any(code.startswith("2") for code in operation["responses"]), (path, method)
            for requirement in operation["security"]:
                assert set(requirement) <= schemes, (path, method)
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path


def test_docs_page_is_html_with_assets_served_locally(client):
    response = client.get("/api/v1/docs")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assets = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', page)
    assert len(assets) >= 3
    for url in assets:
        assert url.startswith("/"), url  # served by us, no CDN
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.get_data()
        asset.close()
    spec = re.search(r'data-spec="([^"]+)"', page)
    assert spec is not None
    assert client.get(spec.group(1)).status_code == 200


def test_docs_page_loads_no_inline_script(client):
    page = client.get("/api/v1/docs").get_data(as_text=True)

    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)


def test_unknown_docs_asset_is_404(client):
    assert client.get("/api/v1/docs/assets/nope.js").status_code == 404


def test_every_write_documents_its_rate_limit_and_json_bodies_their_size(client):
    document = client.get(OPENAPI).get_json()

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if method in ("post", "patch", "put", "delete"):
                assert "Retry-After" in responses["429"]["headers"], (path, method)
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                assert {"400", "413"} <= set(responses), (path, method)


def test_the_document_states_what_the_server_refuses(client):
    document = client.get(OPENAPI).get_json()
    paths, schemas = document["paths"], document["components"]["schemas"]

    assert "409" in paths["/lists/{list_id}/members/{username}"]["delete"]["responses"]
    upload = paths["/imports"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["properties"]["list_id"]["minLength"] == 1
    query = {p["name"]: p["schema"] for p in paths["/todos"]["get"]["parameters"]}
    assert re.fullmatch(query["cursor"]["pattern"], "eyJ0IjoxfQ")
    assert "minLength" not in query["q"]  # an empty q is no search, not a 400
    title = schemas["TodoCreate"]["properties"]["title"]["pattern"]
    assert re.search(title, "milk") and not re.search(title, " \t\u3000")
    assert not re.search(title, "milk\x00")
    assert not re.search(schemas["TodoCreate"]["properties"]["notes"]["pattern"], "a\x00b")
    email = schemas["UserCreate"]["properties"]["email"]["pattern"]
    assert re.search(email, " Ann@Example.com ") and not re.search(email, "ann@example")


def _declared_views():
    """Every function of the todoscale.api modules that carries an @operation."""
    views = set()
    for module in pkgutil.iter_modules(todoscale.api.__path__, "todoscale.api."):
        for value in vars(importlib.import_module(module.name)).values():
            if inspect.isfunction(value) and declared(value) is not None:
                views.add(value)
    return views


def test_the_api_routes_and_the_declared_operations_are_one_set(app):
    """A route without its @operation, or an @operation on no route, cannot ship."""
    routed = {
        app.view_functions[rule.endpoint]
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and not rule.endpoint.startswith("api.openapi.")
    }
    undeclared = {view.__qualname__ for view in routed if declared(view) is None}

    assert routed, "no API routes found"
    assert undeclared == set()
    assert _declared_views() == routed


def test_a_route_without_an_operation_fails_the_document():
    app = Flask(__name__)
    api = Blueprint("api", __name__, url_prefix="/api/v1")

    @api.get("/things/<int:thing_id>")
    @declare("One thing", ok=200, fails="404", security=None)
    def thing(thing_id):
        return {}

    @api.delete("/things/<thing_id>")
    def forget(thing_id):
        return "", 204

    api.register_blueprint(openapi.bp)
    app.register_blueprint(api)

    with pytest.raises(LookupError, match=r"/api/v1/things/<thing_id> \(api.forget\)"):
        openapi.document(app, "/api/v1")
    app.view_functions["api.forget"] = declare("Forget a thing", ok=204)(forget)
    paths = openapi.document(app, "/api/v1")["paths"]

    assert set(paths) == {"/things/{thing_id}"}
    assert paths["/things/{thing_id}"]["get"]["parameters"] == [
        {"name": "thing_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    ]
    assert paths["/things/{thing_id}"]["get"]["security"] == []
    assert set(paths["/things/{thing_id}"]["delete"]["responses"]) == {"204", "429"}
    assert paths["/things/{thing_id}"]["delete"]["security"] == [{"bearer": []}]


def test_each_operation_asks_for_the_credentials_it_documents(client):
    """The document's `security` is what the route enforces: without credentials, a route
    that names a scheme answers 401 challenging with it, and one that names none does not."""
    document = client.get(OPENAPI).get_json()

    for path, operations in document["paths"].items():
        url = "/api/v1" + re.sub(r"\{[^}]+\}", "x", path)
        for method, entry in operations.items():
            response = client.open(url, method=method.upper())
            schemes = [scheme for requirement in entry["security"] for scheme in requirement]
            if schemes:
                assert response.status_code == 401, (path, method)
                challenge = response.headers["WWW-Authenticate"].split()[0].lower()
                assert challenge in schemes, (path, method)
            else:
                assert response.status_code != 401, (path, method)
