"""Per-request plumbing: request ids, security headers, proxies and the request log."""

from __future__ import annotations

import logging
import re

import orjson
import pytest

from todoscale.ops.logs import JsonFormatter, RequestIdFilter

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@pytest.fixture
def request_records():
    """Records of the request logger, caught on the logger itself (whatever propagates)."""
    caught: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = caught.append  # type: ignore[method-assign]
    logger = logging.getLogger("todoscale.request")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield caught
    logger.removeHandler(handler)
    logger.setLevel(level)


def _responses(client, alice):
    """A spread of responses: success, created, no content, redirects aside, every error kind."""
    todo = alice.add_todo()
    etag = alice.get(todo["url"]).headers["ETag"]
    responses = {
        "200 json": client.get("/healthz"),
        "200 api": alice.get("/api/v1/lists"),
        "201": alice.post("/api/v1/lists", json={"name": "x"}),
        "204": alice.delete(todo["url"].replace(todo["id"], alice.add_todo()["id"])),
        "304": alice.get(todo["url"], headers={"If-None-Match": etag}),
        "400": alice.post("/api/v1/lists", data="nope", content_type="application/json"),
        "401": client.get("/api/v1/users/me"),
        "404 api": alice.get("/api/v1/todos/" + "0" * 32),
        "404 api route": client.get("/api/v1/no/such/route"),
        "405 api": client.put("/api/v1/lists"),
        "page 404": client.get("/no/such/page"),
        "page 405": client.put("/healthz"),
        "412": alice.patch(todo["url"], json={"title": "y"}, headers={"If-Match": '"x"'}),
        "413": alice.post("/api/v1/todos", data=b"x" * (2 << 20), content_type="application/json"),
        "422": alice.post("/api/v1/lists", json={"name": ""}),
        "html": client.get("/api/v1/docs"),
        "asset": client.get("/api/v1/docs/assets/swagger-ui.css"),
    }
    for response in responses.values():
        response.get_data()
        response.close()  # a file served from disk stays open until closed
    return responses


def test_security_headers_are_on_every_response(client, alice):
    for name, response in _responses(client, alice).items():
        headers = response.headers
        csp = headers.get("Content-Security-Policy", "")
        assert "base-uri" in csp, name
        assert "frame-ancestors" in csp, name
        assert "default-src 'self'" in csp, name
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        assert headers.get("Referrer-Policy"), name
        assert "Strict-Transport-Security" not in headers, name
        assert REQUEST_ID.match(headers["X-Request-ID"]), name


def test_no_cache_keeps_a_response_but_files_say_their_own(client, alice):
    for name, response in _responses(client, alice).items():
        caching = response.headers.getlist("Cache-Control")
        if name == "asset":  # a file of the API docs, sent from disk
            assert caching == ["public, max-age=86400"], caching
        else:
            assert caching == ["no-store"], (name, caching)
    page = client.get("/login")
    stylesheet = page.get_data(as_text=True).split('href="/static/', 1)[1].split('"', 1)[0]
    static = client.get(f"/static/{stylesheet}")
    static.close()
    assert static.headers.getlist("Cache-Control") == ["public, max-age=31536000, immutable"]


def test_api_errors_are_problem_details_with_their_status(client, alice):
    for name, response in _responses(client, alice).items():
        if name[0] in "45":  # the API's errors; pages answer HTML
            assert response.status_code == int(name[:3]), name
            assert response.mimetype == "application/problem+json", name
            problem = response.get_json()
            assert problem["status"] == response.status_code
            assert {"type", "title", "detail"} <= set(problem)


def test_hsts_only_in_production(make_app):
    # TESTING keeps the factory from configuring the process's logging, which is global.
    production = make_app(ENV_NAME="production", SECRET_KEY="x" * 32, TESTING=True)
    development = make_app(ENV_NAME="development")

    assert (
        "max-age=" in production.test_client().get("/healthz").headers["Strict-Transport-Security"]
    )
    assert "Strict-Transport-Security" not in development.test_client().get("/healthz").headers


@pytest.mark.parametrize(
    "request_id", ["abc", "A-b_c.9", "x" * 128, "0", "6f1c8e0b-5a8e-4c52-9d51-0c4b8a0f6a10"]
)
def test_a_well_formed_request_id_is_echoed(client, request_id):
    response = client.get("/healthz", headers={"X-Request-ID": request_id})

    assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize(
    "request_id", ["", "has space", "x" * 129, "<script>", "a/b", "semi;colon", "é", "a\tb"]
)
def test_a_malformed_request_id_is_replaced(client, request_id):
    response = client.get("/healthz", headers={"X-Request-ID": request_id})

    assert response.headers["X-Request-ID"] != request_id
    assert REQUEST_ID.match(response.headers["X-Request-ID"])


def test_each_request_gets_its_own_id(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}

    assert len(ids) == 5


def test_request_id_is_on_error_responses_too(client):
    response = client.get("/api/v1/users/me", headers={"X-Request-ID": "trace-me"})

    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "trace-me"


XFF = "203.0.113.9, 198.51.100.7"


@pytest.mark.parametrize(
    ("hops", "expected"), [(0, "10.1.2.3"), (1, "198.51.100.7"), (2, "203.0.113.9")]
)
def test_trusted_proxies_decide_which_forwarded_address_is_the_client(
    make_app, request_records, hops, expected
):
    app = make_app(TRUSTED_PROXIES=hops, REQUEST_LOG=True)

    app.test_client().get(
        "/healthz",
        headers={"X-Forwarded-For": XFF},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )

    assert [record.remote_addr for record in request_records] == [expected]


def test_without_trusted_proxies_forwarded_proto_and_host_are_ignored(make_app):
    app = make_app(TRUSTED_PROXIES=0)
    seen = {}

    @app.get("/probe")
    def probe():
        from flask import request

        seen.update(scheme=request.scheme, host=request.host)
        return {}

    app.test_client().get(
        "/probe", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    )

    assert seen == {"scheme": "http", "host": "localhost"}


def test_one_request_log_record_per_request(make_app, request_records):
    app = make_app(REQUEST_LOG=True)

    app.test_client().get("/healthz", headers={"X-Request-ID": "req-42"})
    app.test_client().put("/healthz")

    assert len(request_records) == 2
    first = request_records[0]
    assert (first.method, first.path, first.status, first.user_id) == ("GET", "/healthz", 200, None)
    assert first.duration_ms >= 0
    assert request_records[1].status == 405


def test_the_request_log_line_is_json_with_the_request_id_and_user(app, alice, monkeypatch):
    handler = logging.Handler()
    lines: list[str] = []
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("todoscale.request")
    monkeypatch.setattr(logger, "handlers", [*logger.handlers, handler])
    monkeypatch.setattr(logger, "level", logging.INFO)
    monkeypatch.setitem(app.config, "REQUEST_LOG", True)

    alice.get("/api/v1/users/me", headers={"X-Request-ID": "req-7"})

    assert len(lines) == 1
    entry = orjson.loads(lines[0])
    assert entry["logger"] == "todoscale.request"
    assert entry["request_id"] == "req-7"
    assert entry["method"] == "GET"
    assert entry["path"] == "/api/v1/users/me"
    assert entry["status"] == 200
    assert entry["user_id"] == alice.user["id"]
    assert isinstance(entry["duration_ms"], float | int)


def test_responses_name_their_type_and_charset_and_allow_no_other_origin(client, alice):
    cross = {"Origin": "https://evil.example"}
    page = client.get("/login", headers=cross)
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    api = client.get("/api/v1/users/me", headers={**alice.headers, **cross})
    assert api.headers["Content-Type"] == "application/json"  # UTF-8 by RFC 8259
    problem = client.get("/api/v1/users/me", headers=cross)
    assert problem.headers["Content-Type"] == "application/problem+json"
    for response in (page, api, problem):
        assert "Access-Control-Allow-Origin" not in response.headers
