"""The main request loops under pytest-memray's `limit_leaks`, run by test_request_loops.py
with `--memray`: once as they are (must pass), once with a deliberately leaking view among
them (must fail: the check catches a leaking view added)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from flask import Flask
from flask_migrate import upgrade

from todoscale import create_app
from todoscale.extensions import db

HOARD: list[bytes] = []
LIMIT = "1 MB"
LOOPS = 40


def leak() -> str:
    """Keeps 50 kB of every request: the leak the check must catch."""
    HOARD.append(b"x" * 51_200)
    return "leaked"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    folder = tmp_path_factory.mktemp("leaks")
    app = create_app({"ENV_NAME": "testing", "INSTANCE_PATH": str(folder),
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'l.db'}"})  # fmt: skip
    app.add_url_rule("/test/leak", "leak", leak)
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def headers(app: Flask) -> dict[str, str]:
    """A user's bearer header, and one round of the loops: caches filled before measuring."""
    client = app.test_client()
    body = {"username": "leaky", "email": "l@example.com", "password": "long enough pw"}
    assert client.post("/api/v1/users", json=body).status_code == 201
    basic = base64.b64encode(b"leaky:long enough pw").decode()
    token = client.post("/api/v1/tokens", headers={"Authorization": f"Basic {basic}"})
    headers = {"Authorization": f"Bearer {token.get_json()['token']}"}
    _loop(app, headers)
    return headers


def _loop(app: Flask, headers: dict[str, str], *, leaky: bool = False) -> None:
    client = app.test_client()
    for number in range(LOOPS):
        assert client.get("/api/v1/todos?limit=10", headers=headers).status_code == 200
        if number % 10 == 0:
            created = client.post("/api/v1/todos", json={"title": "t"}, headers=headers)
            assert created.status_code == 201
        assert client.get("/api/v1/lists", headers=headers).status_code == 200
        if leaky:
            client.get("/test/leak")


@pytest.mark.limit_leaks(LIMIT)
def test_the_main_request_loops_do_not_leak(app: Flask, headers: dict[str, str]) -> None:
    _loop(app, headers)


@pytest.mark.limit_leaks(LIMIT)
def test_with_a_leaking_view_the_loops_leak(app: Flask, headers: dict[str, str]) -> None:
    _loop(app, headers, leaky=True)
