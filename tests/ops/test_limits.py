"""Rate limits and login throttling, in memory: budgets, headers, isolation, the 429 shapes."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.web.conftest import csrf_token

PASSWORD = "correct horse battery"


def basic(username: str, password: str) -> dict[str, str]:
    """An HTTP Basic header."""
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def register(client: FlaskClient, username: str, **kwargs: Any) -> str:
    """Register `username` through the API and return a token."""
    body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    assert client.post("/api/v1/users", json=body, **kwargs).status_code == 201
    response = client.post("/api/v1/tokens", headers=basic(username, PASSWORD))
    assert response.status_code == 201, response.get_json()
    token: str = response.get_json()["token"]
    return token


def login(client: FlaskClient, username: str, password: str, address: str) -> TestResponse:
    """POST /api/v1/tokens as seen from `address` (the app trusts one proxy)."""
    return client.post(
        "/api/v1/tokens", headers={**basic(username, password), "X-Forwarded-For": address}
    )


def add_todo(client: FlaskClient, token: str) -> TestResponse:
    return client.post(
        "/api/v1/todos", json={"title": "x"}, headers={"Authorization": f"Bearer {token}"}
    )


def test_api_writes_are_limited_per_user_with_headers(limited_app):
    client = limited_app().test_client()
    alice, bob = register(client, "alice"), register(client, "bob")
    for remaining in (2, 1, 0):
        response = add_todo(client, alice)
        assert response.status_code == 201
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Remaining"] == str(remaining)
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 61
        assert "Retry-After" not in response.headers
    refused = add_todo(client, alice)
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["status"] == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 61
    assert refused.headers["RateLimit-Remaining"] == "0"
    # Bob's budget is his own, and Alice may still read.
    assert add_todo(client, bob).status_code == 201
    listing = client.get("/api/v1/todos", headers={"Authorization": f"Bearer {alice}"})
    assert listing.status_code == 200
    assert len(listing.get_json()["items"]) == 3
    assert "RateLimit-Limit" not in listing.headers


def test_imports_have_a_budget_of_their_own_beside_the_writes(limited_app):
    client = limited_app(
        API_WRITE_LIMIT="100 per minute", IMPORT_LIMIT="2 per minute"
    ).test_client()
    alice, bob = register(client, "alice"), register(client, "bob")

    def import_(token: str) -> TestResponse:
        inbox = client.get("/api/v1/lists", headers={"Authorization": f"Bearer {token}"})
        data = {
            "list_id": inbox.get_json()["items"][0]["id"],
            "file": (io.BytesIO(b"title\nx\n"), "a"),
        }
        return client.post(
            "/api/v1/imports", data=data, headers={"Authorization": f"Bearer {token}"}
        )

    assert [import_(alice).status_code for _ in range(2)] == [202, 202]
    refused = import_(alice)
    assert refused.status_code == 429
    assert refused.get_json()["detail"] == "Too many imports; wait for the time in 'Retry-After'."
    assert refused.headers["RateLimit-Limit"] == "2"
    # Other writes and other users' imports go on.
    assert add_todo(client, alice).status_code == 201
    assert import_(bob).status_code == 202


def test_a_write_budget_comes_back_when_the_window_ends(limited_app):
    client = limited_app(API_WRITE_LIMIT="2 per 2 seconds").test_client()
    token = register(client, "alice")
    started = time.time()
    statuses = [add_todo(client, token).status_code for _ in range(3)]
    if time.time() - started >= 1.5:
        pytest.skip("the machine was too slow to fill a two-second window")
    assert statuses == [201, 201, 429]
    time.sleep(2.1)
    assert add_todo(client, token).status_code == 201


def test_anonymous_routes_are_limited_per_real_client_address(limited_app):
    client = limited_app(ANON_LIMIT="2 per minute", TRUSTED_PROXIES=1).test_client()

    def sign_up(name: str, address: str) -> int:
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        headers = {"X-Forwarded-For": address}
        return client.post("/api/v1/users", json=body, headers=headers).status_code

    assert [sign_up(f"user{i}", "203.0.113.1") for i in range(3)] == [201, 201, 429]
    # Behind the same proxy, another client has its own bucket.
    assert sign_up("another", "203.0.113.2") == 201


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(limited_app):
    client = limited_app(ANON_LIMIT="2 per minute").test_client()
    statuses = [
        client.post("/api/v1/tokens", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
        for i in range(3)
    ]
    assert statuses == [401, 401, 429]


def test_login_failures_are_throttled_per_account_and_address(limited_app):
    client = limited_app(TRUSTED_PROXIES=1).test_client()
    register(client, "alice")
    register(client, "bob")
    statuses = [login(client, "alice", "wrong", "203.0.113.9").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    refused = login(client, "alice", PASSWORD, "203.0.113.9")
    assert refused.status_code == 429, "the right password does not lift the throttle"
    assert refused.mimetype == "application/problem+json"
    assert 800 < int(refused.headers["Retry-After"]) <= 15 * 60 + 1
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    # Another address, or another account from the same address, is not affected.
    assert login(client, "alice", PASSWORD, "203.0.113.10").status_code == 201
    assert login(client, "bob", PASSWORD, "203.0.113.9").status_code == 201
    # The account name is matched as the user types it, whatever the case.
    assert login(client, "ALICE", "wrong", "203.0.113.9").status_code == 429


def test_successful_logins_use_no_failure_budget(limited_app):
    client = limited_app(TRUSTED_PROXIES=1).test_client()
    register(client, "alice")
    for _ in range(5):
        assert login(client, "alice", PASSWORD, "203.0.113.9").status_code == 201
    statuses = [login(client, "alice", "wrong", "203.0.113.9").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_account_limit_stops_a_spray_from_many_addresses_but_not_the_owner(limited_app):
    app = limited_app(TRUSTED_PROXIES=1, LOGIN_FAILURES_PER_ACCOUNT="4 per hour")
    client = app.test_client()
    register(client, "alice")
    assert login(client, "alice", PASSWORD, "192.0.2.1").status_code == 201  # her address
    spray = [login(client, "alice", "wrong", f"203.0.113.{i}").status_code for i in range(1, 6)]
    assert spray == [401, 401, 401, 401, 429]
    # A new address is refused even with the right password: the account is under attack...
    assert login(client, "alice", PASSWORD, "198.51.100.7").status_code == 429
    # ...but the owner, from an address she logged in from before, still gets in.
    assert login(client, "alice", PASSWORD, "192.0.2.1").status_code == 201


def test_the_web_login_form_is_throttled_with_a_translated_page(limited_app):
    app = limited_app()
    client = app.test_client()
    register(client, "alice")

    def submit(password: str) -> TestResponse:
        page = client.get("/login")
        form = {"csrf_token": csrf_token(page), "username": "alice", "password": password}
        return client.post("/login", data=form, headers={"Accept-Language": "zh-Hans"})

    assert [submit("wrong").status_code for _ in range(3)] == [422, 422, 422]
    refused = submit("wrong")
    assert refused.status_code == 429
    assert refused.mimetype == "text/html"
    assert int(refused.headers["Retry-After"]) > 0
    assert "请求过于频繁" in refused.get_data(as_text=True)
    # The API token endpoint shares the budget: same account, same address.
    assert client.post("/api/v1/tokens", headers=basic("alice", PASSWORD)).status_code == 429


def test_the_web_pages_are_limited_per_address(limited_app):
    client = limited_app(ANON_LIMIT="2 per minute").test_client()
    assert [client.get("/login").status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/register").status_code == 200, "each page has its own budget"


def test_limits_can_be_turned_off(limited_app):
    client = limited_app(RATE_LIMITS_ENABLED=False).test_client()
    token = register(client, "alice")
    assert {add_todo(client, token).status_code for _ in range(5)} == {201}
    statuses = {client.post("/api/v1/tokens", headers=basic("alice", "x")).status_code}
    assert statuses == {401}


def test_the_memory_storage_starts_no_thread_per_request(limited_app, monkeypatch):
    """limits' own memory storage started a Timer thread per request under load; ours
    sweeps on the caller's thread, and still forgets stale keys and expired windows."""
    import threading

    import limits.storage.memory

    from todoscale.ops.limits import SweptMemoryStorage

    started: list[object] = []

    class CountingTimer(threading.Timer):
        def start(self) -> None:
            started.append(self)
            super().start()

    app = limited_app(API_WRITE_LIMIT="100 per minute")
    client = app.test_client()
    monkeypatch.setattr(limits.storage.memory.threading, "Timer", CountingTimer)
    token = register(client, "sweeper")
    for n in range(20):
        response = client.post(
            "/api/v1/todos", json={"title": f"t{n}"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 201
    assert started == []
    (limiter,) = app.extensions["limiter"]
    storage = limiter.storage
    assert isinstance(storage, SweptMemoryStorage)

    storage.incr("stale", expiry=0.01)
    time.sleep(0.02)
    assert storage.get("stale") == 0  # an expired window reads as empty
    storage.incr("stale", expiry=0.01)
    time.sleep(0.02)
    storage.next_sweep = 0.0
    storage.incr("fresh", expiry=60)
    assert "stale" not in storage.storage and storage.get("fresh") == 1


def test_a_database_gone_during_the_limits_lookup_is_not_a_500(limited_app, monkeypatch):
    """PostgreSQL stopped under load (tests/chaos/test_postgres_stop.py): the limiter's token
    lookup met the dead connection, Flask-Limiter swallowed the error (as its storage's), and
    the view's own lookup then found the session's transaction broken: a 500, not a 503."""
    app = limited_app()
    client = app.test_client()
    token = register(client, "alice")
    from sqlalchemy.exc import OperationalError

    from todoscale.extensions import db
    from todoscale.ops import limits

    def dropped(_token: str) -> str | None:
        # What SQLAlchemy does when the server goes away mid-transaction: it invalidates the
        # session's connection, then raises.
        connection = db.session.connection()
        connection.invalidate()
        raise OperationalError("SELECT ...", {}, Exception("server closed the connection"))

    monkeypatch.setattr(limits, "token_user_id", dropped)
    response = add_todo(client, token)
    assert response.status_code == 201, response.get_json()  # the database answers the view


def test_a_limited_write_the_database_refuses_keeps_its_retry_after(limited_app, monkeypatch):
    """PostgreSQL stopped under load: a write that passed its limit and then met the database
    gone was a 503 without Retry-After (the limits' headers dropped it as the library's)."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from todoscale.services import todos

    app = limited_app()
    client = app.test_client()
    token = register(client, "alice")

    def refused(*_args: Any, **_kwargs: Any) -> None:
        raise OperationalError("INSERT ...", {}, sqlite3.OperationalError("connection refused"))

    monkeypatch.setattr(todos, "create_todo", refused)
    response = add_todo(client, token)
    assert response.status_code == 503
    assert response.headers["RateLimit-Limit"] == "3"  # it was a limited write
    assert response.headers["Retry-After"] == "5"  # the app's, not the limit window's


def _limits_considered(client: FlaskClient, monkeypatch, send) -> list[str]:
    """The limits Flask-Limiter looks at (exempt or not) while `send()` is answered."""
    from flask_limiter._limits import RuntimeLimit

    seen: list[str] = []
    real = RuntimeLimit.is_exempt

    def spy(limit: RuntimeLimit) -> bool:
        seen.append(str(limit.limit))
        return bool(real.fget(limit))  # type: ignore[attr-defined]

    monkeypatch.setattr(RuntimeLimit, "is_exempt", property(spy))
    send()
    monkeypatch.undo()
    return sorted(seen)


def test_each_request_is_checked_against_exactly_the_limits_that_govern_it(
    limited_app, monkeypatch
):
    """A plain write looks at the write budget only, not at the import and anonymous
    limits beside it; an import at the write and import budgets; a sign-up at the
    anonymous limit (and the write budget, exempt without a token)."""
    client = limited_app(
        API_WRITE_LIMIT="100 per minute", IMPORT_LIMIT="7 per minute", ANON_LIMIT="9 per minute"
    ).test_client()
    token = register(client, "alice")
    auth = {"Authorization": f"Bearer {token}"}
    inbox = client.get("/api/v1/lists", headers=auth).get_json()["items"][0]["id"]
    writes, imports, anonymous = "100 per 1 minute", "7 per 1 minute", "9 per 1 minute"

    def import_() -> None:
        data = {"list_id": inbox, "file": (io.BytesIO(b"title\nx\n"), "a")}
        assert client.post("/api/v1/imports", data=data, headers=auth).status_code == 202

    def sign_up() -> None:
        body = {"username": "bob", "email": "bob@example.com", "password": PASSWORD}
        assert client.post("/api/v1/users", json=body).status_code == 201

    assert _limits_considered(client, monkeypatch, lambda: add_todo(client, token)) == [writes]
    assert _limits_considered(client, monkeypatch, import_) == sorted([imports, writes])
    assert _limits_considered(client, monkeypatch, sign_up) == sorted([anonymous, writes])


def test_web_and_api_imports_share_one_budget(limited_app):
    from tests.web.conftest import WebUser

    app = limited_app(API_WRITE_LIMIT="100 per minute", IMPORT_LIMIT="2 per minute")
    ann = WebUser(app)
    list_id = ann.inbox_id()

    def web_import() -> TestResponse:
        return ann.post(
            f"/lists/{list_id}/import",
            {"file": (io.BytesIO(b"title\nx\n"), "a.csv")},
            content_type="multipart/form-data",
        )

    def api_import() -> TestResponse:
        data = {"list_id": list_id, "file": (io.BytesIO(b"title\nx\n"), "a")}
        headers = {"Authorization": f"Bearer {ann.api_token()}"}
        return app.test_client().post("/api/v1/imports", data=data, headers=headers)

    assert web_import().status_code == 302
    assert api_import().status_code == 202
    assert web_import().status_code == 429
    assert api_import().status_code == 429
