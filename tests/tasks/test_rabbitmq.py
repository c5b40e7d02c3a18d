"""Jobs with RabbitMQ as the broker (TODOSCALE_BROKER_URL=amqp://...), through a real worker."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import kombu
import kombu.exceptions
import pytest
from flask import Flask

from tests.conftest import Account, skip_or_fail
from tests.workers import Worker, purge_queue, wait_for
from todoscale import create_app
from todoscale.extensions import db

AMQP_URL = os.environ.get("TODOSCALE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def rabbitmq_turn() -> Iterator[None]:
    """This machine's runs of the suite take turns at RabbitMQ: its queue on vhost "/" is one
    for all of them (`make test` runs the SQLite and PostgreSQL passes at once), and a worker
    of one run would take the other's messages."""
    with (Path(tempfile.gettempdir()) / "todoscale-test-rabbitmq.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def amqp_app(app: Flask, rabbitmq_turn: None) -> Iterator[Flask]:
    """An app on the suite's database whose broker is RabbitMQ; skipped when none answers."""
    try:
        with kombu.Connection(AMQP_URL, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
    except (OSError, kombu.exceptions.OperationalError) as exc:
        skip_or_fail(f"RabbitMQ at {AMQP_URL} does not answer: {exc}")
    amqp = create_app(
        {
            "ENV_NAME": "testing",
            "INSTANCE_PATH": app.instance_path,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config.get("REDIS_URL"),
            "BROKER_URL": AMQP_URL,
        }
    )
    purge_queue(amqp)
    yield amqp
    purge_queue(amqp)
    with amqp.app_context():
        db.session.remove()
        db.engine.dispose()


def test_an_export_runs_on_a_worker_fed_by_rabbitmq(amqp_app: Flask, alice: Account) -> None:
    alice.add_todo("Milk")
    assert amqp_app.extensions["celery"].conf.broker_url.startswith("amqp://")
    worker = Worker(amqp_app).start()
    try:
        created = amqp_app.test_client().post(
            "/api/v1/exports",
            json={"format": "json"},
            headers={"Authorization": f"Bearer {alice.token}"},
        )
        assert created.status_code == 202, created.get_json()
        job_id = created.get_json()["id"]
        job = wait_for(
            lambda: (
                (body := alice.get(f"/api/v1/jobs/{job_id}").get_json())["status"]
                in ("succeeded", "failed")
                and body
            ),
            timeout=30,
            message="the export never finished",
        )
        assert job["status"] == "succeeded", job
        assert b"Milk" in alice.get(f"/api/v1/jobs/{job_id}/result").data
        assert "amqp://" in worker.log()
    finally:
        worker.kill()
        worker.close()
