"""api/schemas.py: absolute URLs come from TODOSCALE_PUBLIC_URL, never from a client's Host."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade

from todoscale.api.schemas import TodoRead, todo_json
from todoscale.models import TodoRow
from todoscale.ops import logs
from todoscale.realtime.events import EMITTER_EXTENSION

PUBLIC = "https://todo.example.com"
FORGED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
PASSWORD = "correct horse battery"


class RecordingEmitter:
    """Keeps the live updates a process would send (a fake at the edge)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event: str, data: dict[str, Any], rooms: list[str]) -> None:
        self.events.append((event, data))

    def live(self) -> bool:
        return True  # someone listens: events are built and sent


@pytest.fixture
def build(make_app: Callable[..., Flask]) -> Callable[..., Flask]:
    """Apps of their own with the given settings, migrated."""

    def make(**overrides: Any) -> Flask:
        app = make_app(**overrides)
        with app.app_context():
            upgrade()
        return app

    return make


def _token(app: Flask) -> str:
    client = app.test_client()
    body = {"username": "ann", "email": "ann@example.com", "password": PASSWORD}
    assert client.post("/api/v1/users", json=body).status_code == 201
    response = client.post("/api/v1/tokens", auth=("ann", PASSWORD))
    token: str = response.get_json()["token"]
    return token


def test_locations_urls_and_events_follow_the_public_url_not_the_host_header(build):
    app = build(PUBLIC_URL=PUBLIC, TRUSTED_PROXIES=1)
    emitter = app.extensions[EMITTER_EXTENSION] = RecordingEmitter()
    client = app.test_client()
    body = {"username": "bob", "email": "bob@example.com", "password": PASSWORD}
    user = client.post("/api/v1/users", json=body, headers=FORGED)
    assert user.headers["Location"].startswith(f"{PUBLIC}/api/v1/users/")
    assert user.get_json()["url"] == user.headers["Location"]

    bearer = {"Authorization": f"Bearer {_token(app)}", **FORGED}
    todo = client.post("/api/v1/todos", json={"title": "Pay rent"}, headers=bearer)
    assert todo.headers["Location"].startswith(f"{PUBLIC}/api/v1/todos/")
    client.post("/api/v1/todos", json={"title": "Call mum"}, headers=bearer)
    page = client.get("/api/v1/todos?limit=1", headers=bearer)
    assert page.get_json()["items"][0]["url"].startswith(PUBLIC)
    assert page.headers["Link"].startswith(f"<{PUBLIC}/api/v1/todos?")
    created = [data for event, data in emitter.events if event == "todo.created"]
    assert len(created) == 2
    assert all(data["url"].startswith(f"{PUBLIC}/api/v1/todos/") for data in created)
    assert "evil.example" not in repr(emitter.events)


def test_without_a_public_url_trusted_hosts_refuse_a_forged_host(build):
    app = build(TRUSTED_HOSTS=["todo.example.com"])
    client = app.test_client()
    body = {"username": "bob", "email": "bob@example.com", "password": PASSWORD}
    assert client.post("/api/v1/users", json=body, headers=FORGED).status_code == 400
    fine = client.post("/api/v1/users", json=body, headers={"Host": "todo.example.com"})
    assert fine.status_code == 201
    assert fine.headers["Location"].startswith("http://todo.example.com/api/v1/users/")


def test_production_without_either_says_what_to_set(build, monkeypatch):
    monkeypatch.setattr(logs, "configure", lambda level: None)  # leave the handlers alone
    caught: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = caught.append  # type: ignore[method-assign]
    # On the logger itself: another production app may have stopped propagation already.
    logger = logging.getLogger("todoscale.ops.http")
    logger.addHandler(handler)
    try:
        build(ENV_NAME="production", SECRET_KEY="k" * 32)
        build(ENV_NAME="production", SECRET_KEY="k" * 32, PUBLIC_URL=PUBLIC)
        build(ENV_NAME="production", SECRET_KEY="k" * 32, TRUSTED_HOSTS=["todo.example.com"])
    finally:
        logger.removeHandler(handler)
    [warning] = [record.getMessage() for record in caught]
    assert "TODOSCALE_PUBLIC_URL=" in warning and "TODOSCALE_TRUSTED_HOSTS=" in warning


def test_a_todos_answer_is_its_row_and_its_url_without_an_app():
    when = datetime(2026, 11, 22, 8, 15, tzinfo=UTC)
    row = TodoRow("a" * 32, "b" * 32, "Pay rent", "", False, None, when, when, when, 1)

    data = todo_json(row, PUBLIC + "/api/v1")

    assert list(data) == [*TodoRow._fields, "url"] == list(TodoRead.model_fields)
    assert data["url"] == f"{PUBLIC}/api/v1/todos/{'a' * 32}"
    assert TodoRead.model_validate(data).due_at == when
