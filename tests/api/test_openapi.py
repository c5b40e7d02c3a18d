"""/api/v1/openapi.json and /api/v1/docs."""

from __future__ import annotations

import re

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
