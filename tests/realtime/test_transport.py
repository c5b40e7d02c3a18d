"""The embedded relay: events reach a serving process, and none pile up without one."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from todoscale import create_app
from todoscale.extensions import db
from todoscale.realtime.events import EMITTER_EXTENSION
from todoscale.realtime.transport import RELAY_QUEUE, RelayEmitter, RelayHeartbeat


@pytest.fixture
def lone_emitter(tmp_path: Path) -> Iterator[Flask]:
    """`todoscale serve` without Redis: a process that emits, and no Socket.IO process."""
    app = create_app(
        {
            "ENV_NAME": "testing",
            "INSTANCE_PATH": str(tmp_path),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'app.db'}",
            "REDIS_URL": None,
            "SOCKETIO_MESSAGE_QUEUE": None,
            "BROKER_URL": None,
            "REALTIME": "emit",
        }
    )
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _queued(instance: Path) -> int:
    queue_file = instance / "queue.sqlite"
    if not queue_file.exists():
        return 0
    with sqlite3.connect(queue_file) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        if "kombu_message" not in tables:
            return 0
        (count,) = conn.execute(
            "SELECT count(*) FROM kombu_message JOIN kombu_queue"
            " ON kombu_message.queue_id = kombu_queue.id WHERE kombu_queue.name = ?",
            (RELAY_QUEUE,),
        ).fetchone()
    return int(count)


def _emit(app: Flask, times: int) -> None:
    emitter = app.extensions[EMITTER_EXTENSION]
    assert isinstance(emitter, RelayEmitter)
    for n in range(times):
        emitter.emit("todo.created", {"n": n}, ["user:x"])


def test_without_a_socketio_process_events_do_not_pile_up(lone_emitter, tmp_path):
    _emit(lone_emitter, 200)

    assert _queued(tmp_path) == 0


def test_with_a_live_socketio_process_events_are_relayed(lone_emitter, tmp_path):
    heartbeat = RelayHeartbeat(str(tmp_path))
    heartbeat.beat()  # what a serving process's relay does while it reads

    _emit(lone_emitter, 5)

    assert _queued(tmp_path) == 5
