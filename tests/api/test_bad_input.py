"""Every bad input gets a clear problem+json error, and nothing is written."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

TODOS = "/api/v1/todos"


@dataclass(frozen=True)
class Endpoint:
    """A route that reads a JSON body, with a body it accepts and its string and other fields."""

    method: str
    path: str
    valid: dict[str, Any]
    text_field: str
    success: int


ENDPOINTS = [
    Endpoint(
        "post",
        "/api/v1/users",
        {"username": "carol", "email": "carol@example.com", "password": "long enough pw"},
        "username",
        201,
    ),
    Endpoint("post", "/api/v1/lists", {"name": "Groceries"}, "name", 201),
    Endpoint("patch", "/api/v1/lists/{list}", {"name": "Groceries"}, "name", 200),
    Endpoint("post", "/api/v1/lists/{list}/members", {"username": "bob"}, "username", 201),
    Endpoint("post", TODOS, {"title": "Buy milk"}, "title", 201),
    Endpoint("patch", TODOS + "/{todo}", {"title": "Buy oat milk"}, "title", 200),
]
IDS = [f"{e.method.upper()} {e.path}" for e in ENDPOINTS]


@pytest.fixture
def world(alice, bob):
    """Alice with a list of her own and a todo; bob exists so he can be shared with."""
    list_id = alice.post("/api/v1/lists", json={"name": "Mine"}).get_json()["id"]
    todo = alice.add_todo("Original")
    return {"alice": alice, "list": list_id, "todo": todo["id"]}


def _send(world, endpoint: Endpoint, **kwargs: Any) -> Any:
    url = endpoint.path.format(list=world["list"], todo=world["todo"])
    return getattr(world["alice"], endpoint.method)(url, **kwargs)


def _raw(world, endpoint: Endpoint, data: bytes | str, content_type: str = "application/json"):
    return _send(world, endpoint, data=data, headers={"Content-Type": content_type})


def _assert_problem(response: Any, status: int, case: object = None) -> dict[str, Any]:
    assert response.status_code == status, (case, response.get_data(as_text=True)[:500])
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert {"type", "title", "status", "detail"} <= set(problem)
    assert problem["status"] == status
    assert isinstance(problem["detail"], str)
    assert problem["detail"]
    return problem


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_the_valid_body_is_accepted(world, endpoint):
    assert _send(world, endpoint, json=endpoint.valid).status_code == endpoint.success


NOT_JSON = {
    "malformed": b'{"title": ',
    "trailing-garbage": b'{"title": "x"} x',
    "empty": b"",
    "single-quotes": b"{'title': 'x'}",
    "array": b'[{"title": "x"}]',
    "empty-array": b"[]",
    "string": b'"title"',
    "number": b"42",
    "null": b"null",
    "nan": b'{"title": NaN}',
    "infinity": b'{"title": Infinity}',
    "minus-infinity": b'{"title": -Infinity}',
    "overflowing-number": b'{"title": 1e999}',
    "lone-surrogate": b'{"title": "\\ud800"}',
    "lone-low-surrogate": b'{"title": "x\\udc00y"}',
    "invalid-utf8": b'{"title": "\xff\xfe"}',
    "nested-arrays-10000": b'{"title": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    "nested-objects-10000": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_body_that_is_not_a_json_object_is_400(world, row_counts, endpoint):
    before = row_counts()

    for case, body in NOT_JSON.items():
        _assert_problem(_raw(world, endpoint, body), 400, case)

    assert row_counts() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_body_without_a_json_content_type_is_400(world, row_counts, endpoint):
    before = row_counts()

    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        None,
    ]:
        headers = {"Content-Type": content_type} if content_type else {}
        response = _send(world, endpoint, data=json.dumps(endpoint.valid), headers=headers)
        problem = _assert_problem(response, 400, content_type)
        assert "application/json" in problem["detail"]

    assert row_counts() == before


def test_json_content_type_with_a_charset_is_accepted(world):
    endpoint = ENDPOINTS[4]

    response = _raw(world, endpoint, b'{"title": "x"}', "application/json; charset=utf-8")

    assert response.status_code == 201


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_an_unknown_field_is_422(world, row_counts, endpoint):
    before = row_counts()

    response = _send(world, endpoint, json={**endpoint.valid, "is_admin": True})

    problem = _assert_problem(response, 422)
    assert list(problem["errors"]) == ["is_admin"]
    assert row_counts() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_wrong_type_is_422(world, row_counts, endpoint):
    before = row_counts()

    for value in [123, 1.5, True, ["x"], {"x": 1}, None]:
        response = _send(world, endpoint, json={**endpoint.valid, endpoint.text_field: value})
        problem = _assert_problem(response, 422, value)
        assert endpoint.text_field in problem["errors"]

    assert row_counts() == before


@pytest.mark.parametrize(
    ("endpoint", "field", "value"),
    [
        (ENDPOINTS[4], "notes", 5),
        (ENDPOINTS[4], "list_id", 5),
        (ENDPOINTS[5], "completed", "true"),
        (ENDPOINTS[5], "completed", 1),
        (ENDPOINTS[5], "completed", None),
        (ENDPOINTS[5], "list_id", None),
        (ENDPOINTS[5], "notes", None),
        (ENDPOINTS[0], "password", 12345678),
        (ENDPOINTS[0], "email", None),
    ],
)
def test_other_wrong_types_are_422(world, row_counts, endpoint, field, value):
    before = row_counts()

    response = _send(world, endpoint, json={**endpoint.valid, field: value})

    problem = _assert_problem(response, 422)
    assert field in problem["errors"]
    assert row_counts() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS[::2] + ENDPOINTS[3:5], ids=IDS[::2] + IDS[3:5])
def test_a_missing_required_field_is_422(world, row_counts, endpoint):
    body = {k: v for k, v in endpoint.valid.items() if k != endpoint.text_field}
    before = row_counts()

    response = _send(world, endpoint, json=body)

    problem = _assert_problem(response, 422)
    assert endpoint.text_field in problem["errors"]
    assert row_counts() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_nul_character_in_a_string_is_422(world, row_counts, endpoint):
    before = row_counts()

    for value in ["a\x00b", "\x00", "Buy\x00milk", "  bob\x00  "]:
        response = _send(world, endpoint, json={**endpoint.valid, endpoint.text_field: value})
        problem = _assert_problem(response, 422, value)
        assert endpoint.text_field in problem["errors"]

    assert row_counts() == before


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [
        (ENDPOINTS[0], "email"),
        (ENDPOINTS[0], "password"),
        (ENDPOINTS[4], "notes"),
        (ENDPOINTS[4], "list_id"),
        (ENDPOINTS[5], "notes"),
        (ENDPOINTS[5], "list_id"),
    ],
)
def test_a_nul_character_in_any_string_field_is_422(world, row_counts, endpoint, field):
    before = row_counts()

    response = _send(world, endpoint, json={**endpoint.valid, field: "long enough\x00pw"})

    problem = _assert_problem(response, 422)
    assert field in problem["errors"]
    assert row_counts() == before


@pytest.mark.parametrize("endpoint", [ENDPOINTS[4], ENDPOINTS[5]], ids=IDS[4:])
def test_due_at_without_a_time_zone_or_not_a_string_is_422(world, row_counts, endpoint):
    before = row_counts()

    for due_at in [
        "2026-11-22T08:15:00",
        "2026-11-22",
        1_790_000_000,
        1.5,
        True,
        "tomorrow",
        "",
        ["x"],
        "2026-13-01T00:00:00Z",
    ]:
        response = _send(world, endpoint, json={**endpoint.valid, "due_at": due_at})
        problem = _assert_problem(response, 422, due_at)
        assert "due_at" in problem["errors"]

    assert row_counts() == before


@pytest.mark.parametrize("endpoint", [ENDPOINTS[4], ENDPOINTS[5]], ids=IDS[4:])
def test_due_at_past_the_range_of_time_is_422_not_500(world, row_counts, endpoint):
    before = row_counts()

    for due_at in [
        "9999-12-31T23:00:00-05:00",  # past year 9999 once in UTC: an OverflowError before
        "0001-01-01T01:00:00+05:00",
        "9999-12-31T00:00:00Z",  # inside datetime's range, but no zone east of UTC shows it
    ]:
        response = _send(world, endpoint, json={**endpoint.valid, "due_at": due_at})
        problem = _assert_problem(response, 422, due_at)
        assert problem["errors"]["due_at"] == ["must be between 0001-01-02 and 9999-12-30 (UTC)"]

    assert row_counts() == before
    response = _send(world, endpoint, json={**endpoint.valid, "due_at": "9999-12-30T12:00:00Z"})
    assert response.status_code == endpoint.success
    assert response.get_json()["due_at"] == "9999-12-30T12:00:00Z"


def _streamed(account, method: str, url: str, body: bytes) -> Any:
    """Send `body` as a chunked request: no Content-Length, as a WSGI server hands it on."""
    headers = {
        **account.headers,
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
    }
    environ = EnvironBuilder(
        path=url, method=method.upper(), headers=headers, input_stream=io.BytesIO(body)
    ).get_environ()
    del environ["CONTENT_LENGTH"]  # the test client always computes one
    environ["wsgi.input_terminated"] = True  # what gunicorn says of a de-chunked body
    return account.client.open(Request(environ))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_body_over_the_maximum_is_413(app, world, row_counts, endpoint):
    limit = app.config["MAX_JSON_BYTES"]
    body = b'{"title": "' + b"x" * limit + b'"}'
    before = row_counts()

    response = _raw(world, endpoint, body)

    _assert_problem(response, 413)
    assert row_counts() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_streamed_body_without_a_length_over_the_maximum_is_413(app, world, row_counts, endpoint):
    limit = app.config["MAX_JSON_BYTES"]
    body = b'{"title": "' + b"x" * limit + b'"}'
    url = endpoint.path.format(list=world["list"], todo=world["todo"])
    before = row_counts()

    response = _streamed(world["alice"], endpoint.method, url, body)

    _assert_problem(response, 413)
    assert row_counts() == before


def test_a_streamed_body_under_the_maximum_is_read(world):
    response = _streamed(world["alice"], "post", TODOS, b'{"title": "streamed"}')

    assert response.status_code == 201
    assert response.get_json()["title"] == "streamed"


def test_a_body_of_exactly_the_maximum_is_read(app, world, monkeypatch):
    body = b'{"title": "fits"}'
    monkeypatch.setitem(app.config, "MAX_JSON_BYTES", len(body))

    assert _raw(world, ENDPOINTS[4], body).status_code == 201
    _assert_problem(_raw(world, ENDPOINTS[4], body + b" "), 413)


def test_a_bad_cursor_is_400(world):
    for cursor in [
        "garbage",
        "!!!!",
        "é",
        "W10",  # []
        "eyJhIjoxfQ",  # {"a":1}
        "WyIyMDI2LTExLTIyVDA4OjE1OjAwIiwiYWJjIl0",  # a time without a zone
        "WzEsMl0",  # [1,2]
        "WyJub3QgYSBkYXRlIiwiYWJjIl0",  # ["not a date","abc"]
        "x" * 500,
    ]:
        for query in [{"cursor": cursor}, {"cursor": cursor, "list_id": world["list"]}]:
            response = world["alice"].get(TODOS, query_string=query)
            problem = _assert_problem(response, 400, cursor)
            assert "cursor" in problem["detail"]


def test_a_limit_out_of_range_is_400(world):
    for limit in ["0", "101", "abc", "-1", "1.5", "", " 5", "1e2", "²", "\u0661", "1" * 5000]:
        response = world["alice"].get(TODOS, query_string={"limit": limit})
        problem = _assert_problem(response, 400, limit)
        assert "limit" in problem["detail"]


def test_completed_other_than_true_or_false_is_400(world):
    for completed in ["maybe", "True", "1", "yes", ""]:
        response = world["alice"].get(TODOS, query_string={"completed": completed})
        problem = _assert_problem(response, 400, completed)
        assert "completed" in problem["detail"]


def test_bad_input_to_a_todo_changes_nothing(world):
    alice, url = world["alice"], f"{TODOS}/{world['todo']}"
    before = alice.get(url).get_json()

    for body in [{"title": "new", "notes": "\x00"}, {"title": "new", "due_at": "2026-01-01"}]:
        assert alice.patch(url, json=body).status_code == 422

    assert alice.get(url).get_json() == before


def test_a_nul_character_in_a_path_or_query_is_404(world):
    alice = world["alice"]
    for method, url, query in [
        ("get", f"{TODOS}/a%00b", {}),
        ("patch", f"{TODOS}/a%00b", {}),
        ("delete", f"{TODOS}/a%00b", {}),
        ("get", "/api/v1/lists/a%00b", {}),
        ("delete", "/api/v1/lists/a%00b", {}),
        ("delete", f"/api/v1/lists/{world['list']}/members/a%00b", {}),
        ("get", "/api/v1/users/a%00b", {}),
        ("get", TODOS, {"list_id": "a\x00b"}),
    ]:
        response = getattr(alice, method)(url, query_string=query, json={"title": "x"})
        _assert_problem(response, 404, (method, url, query))


def test_a_nul_character_in_a_cursor_is_400(world):
    cursor = "WyIyMDI2LTExLTIyVDA4OjE1OjAwWiIsImFcdTAwMDBiIl0"  # [time, "a\u0000b"]

    response = world["alice"].get(TODOS, query_string={"cursor": cursor})

    _assert_problem(response, 400)


def test_a_nul_character_in_basic_credentials_is_401(client, alice):
    for username, password in [("al\x00ice", "correct horse battery"), ("alice", "pass\x00word")]:
        creds = base64.b64encode(f"{username}:{password}".encode()).decode()
        response = client.post("/api/v1/tokens", headers={"Authorization": f"Basic {creds}"})
        _assert_problem(response, 401, username)


@pytest.mark.parametrize("method", ["post", "patch"])
def test_an_empty_list_id_is_invalid_on_create_and_update(alice, row_counts, method):
    todo = alice.add_todo("stays put")
    before = row_counts()
    if method == "post":
        response = alice.post("/api/v1/todos", json={"title": "x", "list_id": ""})
    else:
        response = alice.patch(f"/api/v1/todos/{todo['id']}", json={"list_id": ""})

    assert response.status_code == 422
    assert "list_id" in response.get_json()["errors"]
    assert row_counts() == before
