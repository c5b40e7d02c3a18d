"""Rate limits on a real Redis: shared by two app instances, and surviving a Redis outage."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask_migrate import upgrade

from tests.ops.conftest import LIMITS
from tests.ops.test_limits import PASSWORD, add_todo, basic, login, register
from todoscale.auth import throttle
from todoscale.ops import limits


@pytest.fixture
def shared_apps(make_app: Callable[..., Flask], tmp_path: Path) -> Callable[..., list[Flask]]:
    """Two app instances on one database, with small limits and the given overrides."""

    def make(**overrides: object) -> list[Flask]:
        settings = {
            **LIMITS,
            "TRUSTED_PROXIES": 1,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'shared.db'}",
            **overrides,
        }
        apps = [make_app(**settings), make_app(**settings)]
        with apps[0].app_context():
            upgrade()
        return apps

    return make


def _unique(prefix: str) -> str:
    # Counts in a long-lived Redis outlive a test run: every run uses fresh names.
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def test_limits_are_shared_by_two_instances_through_redis(shared_apps, redis_url):
    first, second = (app.test_client() for app in shared_apps(REDIS_URL=redis_url))
    name = _unique("ann")
    token = register(first, name)
    remaining = [
        add_todo(client, token).headers["RateLimit-Remaining"] for client in (first, second, first)
    ]
    assert remaining == ["2", "1", "0"]
    assert add_todo(second, token).status_code == 429

    address = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    failures = [
        login(client, name, "wrong", address).status_code for client in (first, second, first)
    ]
    assert failures == [401, 401, 401]
    assert login(second, name, PASSWORD, address).status_code == 429


@pytest.fixture
def limiter_records(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[logging.LogRecord]]:
    """Warnings and errors of the limiter's loggers, caught on the loggers themselves (the
    app's logging set-up may stop them from propagating); the once-per-interval memory is
    fresh."""
    monkeypatch.setattr(limits._storage_errors, "_last", {})
    caught: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = caught.append  # type: ignore[method-assign]
    loggers = [
        logging.getLogger(name) for name in ("flask-limiter", limits.__name__, throttle.__name__)
    ]
    for each in loggers:
        each.addHandler(handler)
    yield caught
    for each in loggers:
        each.removeHandler(handler)


def test_a_redis_outage_causes_no_server_errors_and_logins_stay_throttled(
    shared_apps, redis_server, limiter_records
):
    app = shared_apps(REDIS_URL=redis_server.url, API_WRITE_LIMIT="100 per minute")[0]
    client = app.test_client()
    token = register(client, "ann")
    assert add_todo(client, token).headers["RateLimit-Remaining"] == "99"
    redis_server.stop()

    bearer = {"Authorization": f"Bearer {token}"}
    responses = [
        client.get("/healthz"),
        client.get("/api/v1/todos", headers=bearer),
        *(add_todo(client, token) for _ in range(5)),
        client.post(
            "/api/v1/users",
            json={"username": "bob", "email": "bob@example.com", "password": PASSWORD},
        ),
        client.post("/api/v1/tokens", headers=basic("ann", PASSWORD)),
        client.get("/login"),
    ]
    assert [r.status_code for r in responses] == [200, 200, *[201] * 5, 201, 201, 200]
    assert "RateLimit-Limit" not in responses[2].headers, "limits failed open"

    failures = [login(client, "ann", "wrong", "203.0.113.5").status_code for _ in range(4)]
    assert failures == [401, 401, 401, 429], "login throttling went on in this process"
    assert login(client, "ann", PASSWORD, "203.0.113.6").status_code == 201

    messages = [r.getMessage() for r in limiter_records]
    assert len(messages) == 2, "each part logs the outage once, not once per request"
    assert any("rate limits are not enforced" in m for m in messages), messages
    assert any("login throttling uses this process's own counts" in m for m in messages)


def test_reads_of_authenticated_users_cost_no_redis_round_trip(shared_apps, redis_server):
    url = redis_server.url
    server = redis.Redis.from_url(url)

    def commands_for_reads(**overrides: object) -> int:
        client = shared_apps(REDIS_URL=url, **overrides)[0].test_client()
        bearer = {"Authorization": f"Bearer {register(client, _unique('ann'))}"}
        add_todo(client, bearer["Authorization"].split()[1])
        client.get("/api/v1/todos", headers=bearer)  # anything cached on first use, cached
        before = server.info("stats")["total_commands_processed"]
        for _ in range(20):
            assert client.get("/api/v1/todos", headers=bearer).status_code == 200
        return int(server.info("stats")["total_commands_processed"]) - before - 1

    with_limits = commands_for_reads()
    # Whatever else uses Redis (a shared cache) does so with limits off too.
    assert with_limits == commands_for_reads(RATE_LIMITS_ENABLED=False)


def test_after_a_storage_error_the_limits_pause_before_redis_is_tried_again(
    shared_apps, redis_server, monkeypatch
):
    app = shared_apps(REDIS_URL=redis_server.url, API_WRITE_LIMIT="100 per minute")[0]
    client = app.test_client()
    token = register(client, _unique("ann"))
    assert add_todo(client, token).headers["RateLimit-Remaining"] == "99"
    (limiter,) = app.extensions["limiter"]
    connection = limiter.storage.get_connection()  # the limits' Redis client
    commands: list[object] = []
    send = connection.execute_command

    def counted(*args: object, **options: object) -> object:
        commands.append(args[0])
        return send(*args, **options)

    monkeypatch.setattr(connection, "execute_command", counted)
    redis_server.stop()

    started = time.monotonic()
    statuses = [add_todo(client, token).status_code for _ in range(5)]
    if time.monotonic() - started >= 0.9:
        pytest.skip("the machine was too slow to stay within the first pause")
    assert statuses == [201] * 5
    # The write that found Redis gone, and at most one health check; then nothing during
    # the pause (Flask-Limiter's backoff: 1 s, doubling up to 32 s).
    assert 1 <= len(commands) <= 2, commands
    redis_server.start()
    # Back within the pauses that can have begun (2 s, then 4 s), with margin.
    deadline = time.monotonic() + 10
    while "RateLimit-Limit" not in add_todo(client, token).headers:
        assert time.monotonic() < deadline, "the limits did not come back with Redis"
        time.sleep(0.25)
