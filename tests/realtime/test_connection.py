"""Connecting to Socket.IO in the serving process: who is admitted, and what they receive."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_socketio import SocketIOTestClient

from tests.conftest import Account, serving
from tests.web.conftest import WebUser
from todoscale import realtime
from todoscale.realtime.serving import socketio


@pytest.fixture(scope="module")
def serving_app(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """An app on the suite's database that serves Socket.IO in-process (threading mode)."""
    with serving(app, tmp_path_factory.mktemp("serving")) as served:
        yield served


@pytest.fixture
def web(serving_app: Flask) -> FlaskClient:
    """An HTTP client of the serving app."""
    return serving_app.test_client()


def connect(app: Flask, **kwargs: Any) -> SocketIOTestClient:
    return socketio.test_client(app, **kwargs)


def events(client: SocketIOTestClient) -> list[tuple[str, Any]]:
    return [(item["name"], item["args"][0]) for item in client.get_received()]


def test_engineio_answers_carry_the_security_headers_once(web: FlaskClient) -> None:
    # Engine.IO answers /socket.io/ itself, outside Flask's after_request hooks.
    response = web.get("/socket.io/?EIO=4&transport=polling")

    assert response.status_code == 200
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options"):
        assert len(response.headers.getlist(name)) == 1, name
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "same-origin"
    # Flask's own responses of the same process are unchanged: one of each, no duplicates.
    assert len(web.get("/healthz").headers.getlist("X-Frame-Options")) == 1


def test_connect_without_credentials_is_refused(serving_app: Flask) -> None:
    client = connect(serving_app)
    assert not client.is_connected()


def test_connect_with_an_unknown_token_is_refused(serving_app: Flask) -> None:
    client = connect(serving_app, auth={"token": "not-a-token"})
    assert not client.is_connected()
    assert not connect(serving_app, auth={"token": 42}).is_connected()
    assert not connect(serving_app, auth="a string").is_connected()


def test_connect_with_a_token(serving_app: Flask, alice: Account) -> None:
    client = connect(serving_app, auth={"token": alice.token})
    assert client.is_connected()
    client.disconnect()


def test_a_revoked_token_no_longer_connects(
    serving_app: Flask, web: FlaskClient, alice: Account
) -> None:
    connect(serving_app, auth={"token": alice.token}).disconnect()  # its lookup is cached now
    revoked = web.delete("/api/v1/tokens", headers={"Authorization": f"Bearer {alice.token}"})
    assert revoked.status_code == 204
    assert not connect(serving_app, auth={"token": alice.token}).is_connected()


def test_connect_with_the_web_session(serving_app: Flask) -> None:
    person = WebUser(serving_app)
    client = connect(serving_app, flask_test_client=person.client)
    assert client.is_connected()
    client.disconnect()


def test_a_logged_out_session_no_longer_connects(serving_app: Flask) -> None:
    person = WebUser(serving_app)
    cookie = person.cookie()
    person.post("/logout")
    person.client.set_cookie("todoscale_session", cookie or "")
    assert not connect(serving_app, flask_test_client=person.client).is_connected()


def test_changes_made_in_the_serving_process_reach_members_only(
    serving_app: Flask, web: FlaskClient, alice: Account, bob: Account, make_account: Any
) -> None:
    carol = make_account("carol")
    shared = alice.post("/api/v1/lists", json={"name": "Shared"}).get_json()
    alice.post(f"/api/v1/lists/{shared['id']}/members", json={"username": "bob"})
    bob_socket = connect(serving_app, auth={"token": bob.token})
    carol_socket = connect(serving_app, auth={"token": carol.token})

    headers = {"Authorization": f"Bearer {alice.token}"}
    created = web.post(
        "/api/v1/todos", json={"title": "Milk", "list_id": shared["id"]}, headers=headers
    )
    assert created.status_code == 201
    todo = created.get_json()
    web.patch(f"/api/v1/todos/{todo['id']}", json={"completed": True}, headers=headers)
    web.delete(f"/api/v1/todos/{todo['id']}", headers=headers)

    received = events(bob_socket)
    assert [name for name, _ in received] == ["todo.created", "todo.updated", "todo.deleted"]
    assert received[0][1] == todo
    assert received[1][1]["completed"] is True
    assert received[2][1] == {"id": todo["id"], "list_id": shared["id"]}
    assert events(carol_socket) == []
    bob_socket.disconnect()
    carol_socket.disconnect()


@pytest.fixture
def rechecking_app(app: Flask, tmp_path: Any) -> Iterator[Flask]:
    """A serving app whose connections are re-checked every 0.1 s."""
    with serving(app, tmp_path, SOCKETIO_RECHECK_SECONDS=0.1) as served:
        yield served


def _closed_within(client: SocketIOTestClient, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not client.is_connected()


def test_revoking_a_token_closes_the_connections_it_opened(
    rechecking_app: Flask, alice: Account, make_account: Any
) -> None:
    bystander = make_account("dora")
    revoked = connect(rechecking_app, auth={"token": alice.token})
    kept = connect(rechecking_app, auth={"token": bystander.token})
    assert revoked.is_connected() and kept.is_connected()

    response = rechecking_app.test_client().delete(
        "/api/v1/tokens", headers={"Authorization": f"Bearer {alice.token}"}
    )
    assert response.status_code == 204

    assert _closed_within(revoked, 5)
    assert kept.is_connected()  # only the revoked token's connections close
    kept.disconnect()


def test_logging_out_closes_the_sessions_connections(rechecking_app: Flask) -> None:
    person = WebUser(rechecking_app)
    client = connect(rechecking_app, flask_test_client=person.client)
    assert client.is_connected()

    person.post("/logout")

    assert _closed_within(client, 5)


def test_stopping_a_serving_app_ends_its_recheck_task(
    rechecking_app: Flask, alice: Account
) -> None:
    # The task re-checks forever in a serving process. An app that stops serving (a test's,
    # before its engine is disposed) must end it: left running, it kept using the suite's
    # database for the rest of the run, and a connection it held while the engine was
    # disposed stayed open in the discarded pool, for the collector to find in a later test
    # (psycopg's "deleted while still open", which failed CI's PostgreSQL pass).
    client = connect(rechecking_app, auth={"token": alice.token})
    assert client.is_connected()  # the first client starts the task

    assert realtime.stop(rechecking_app, timeout=5)
    assert realtime.stop(rechecking_app, timeout=0)  # stopping twice is harmless
