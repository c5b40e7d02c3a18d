"""A job acknowledged (202) while the broker is down is handed to it once it answers again,
by the process that took the job, not only by the stalled-job sweep (which needs beat, and
leaves alone a job younger than JOB_SWEEP_SECONDS)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask

from tests.conftest import Account, RedisServer
from todoscale import create_app
from todoscale.extensions import db


@pytest.fixture
def broker_app(app: Flask, redis_server: RedisServer, tmp_path: Path) -> Iterator[Flask]:
    """The suite's database, with a private Redis as its only broker."""
    settings = {
        "ENV_NAME": "testing",
        "INSTANCE_PATH": str(tmp_path),
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config.get("REDIS_URL"),
        "BROKER_URL": redis_server.url,
    }
    made = create_app(settings)
    yield made
    with made.app_context():
        db.session.remove()
        db.engine.dispose()
    app.extensions["celery"].set_default()  # the suite's app is every other test's


def _queued(url: str) -> int:
    """How many messages wait in the job queue of the broker at `url`."""
    return int(redis.Redis.from_url(url).llen("todoscale"))


def test_a_job_acknowledged_while_the_broker_is_refused_is_sent_once_it_is_back(
    broker_app: Flask, redis_server: RedisServer
) -> None:
    account = Account(broker_app.test_client())
    redis_server.stop()
    answer = account.post("/api/v1/exports", json={"format": "json"})
    assert answer.status_code == 202, answer.get_json()
    redis_server.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not _queued(redis_server.url):
        time.sleep(0.05)
    assert _queued(redis_server.url) == 1, "the acknowledged job never reached the broker"
