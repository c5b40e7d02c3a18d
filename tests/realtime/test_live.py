"""Live updates end to end: real servers (gunicorn, gevent), real clients over WebSocket."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

from tests.conftest import Account, RedisServer
from tests.realtime.conftest import LiveClient, SocketServer, call, queue_env, running
from todoscale import create_app
from todoscale.extensions import db
from todoscale.models import User, utcnow
from todoscale.realtime.events import NOTIFICATION_FIELDS
from todoscale.realtime.managers import FailFastRedisManager
from todoscale.services import jobs, lists, reminders, todos

Connect = Callable[[str, str], LiveClient]


def names(events: list[tuple[str, Any]]) -> list[str]:
    return [name for name, _ in events]


def share(owner: Account, name: str, *usernames: str) -> str:
    """A new list of `owner`'s, shared with `usernames`; its id."""
    list_id: str = owner.post("/api/v1/lists", json={"name": name}).get_json()["id"]
    for username in usernames:
        response = owner.post(f"/api/v1/lists/{list_id}/members", json={"username": username})
        assert response.status_code == 201, response.get_json()
    return list_id


def user(account: Account) -> User:
    found = db.session.get(User, account.user["id"])
    assert found is not None
    return found


def test_members_get_every_event_type_from_another_process(
    emitter: Flask,
    server: SocketServer,
    live_clients: Connect,
    alice: Account,
    bob: Account,
    make_account: Any,
) -> None:
    carol = make_account("carol")
    shared = share(alice, "Shared", "bob")
    other = share(alice, "Other")
    alice_live = live_clients(server.url, alice.token)
    bob_live = live_clients(server.url, bob.token)
    carol_live = live_clients(server.url, carol.token)

    with emitter.app_context():
        actor = user(alice)
        due = utcnow() + timedelta(minutes=5)
        todo_id = todos.create_todo(actor, title="Milk", list_id=shared, due_at=due).id
        todos.edit_todo(actor, todo_id, {"title": "Oat milk"})
        reminders.send_due_reminders()
        job_id = jobs.create_export(actor, fmt="json").id
        lists.rename_list(actor, shared, "Groceries")
        todos.edit_todo(actor, todo_id, {"list_id": other})
        lists.delete_list(actor, shared)
        db.session.remove()

    got = bob_live.wait_for(lambda events: "list.deleted" in names(events))
    assert names(got) == [
        "todo.created",
        "todo.updated",
        "notification.created",
        "list.updated",
        "todo.deleted",
        "list.deleted",
    ]
    created, updated, notification, renamed, moved, deleted = (data for _, data in got)
    assert (created["id"], created["list_id"], created["title"]) == (todo_id, shared, "Milk")
    assert created["created_at"].endswith("Z") and created["url"].endswith(f"/todos/{todo_id}")
    assert updated["title"] == "Oat milk"
    assert set(notification) == set(NOTIFICATION_FIELDS)
    assert (notification["todo_id"], notification["list_id"]) == (todo_id, shared)
    assert (renamed["id"], renamed["name"]) == (shared, "Groceries")
    assert renamed["members"] == ["alice", "bob"]
    assert moved == {"id": todo_id, "list_id": shared}
    assert deleted == {"id": shared}

    got = alice_live.wait_for(lambda events: "list.deleted" in names(events))
    assert names(got) == [
        "todo.created",
        "todo.updated",
        "notification.created",
        "job.updated",
        "list.updated",
        "todo.deleted",
        "todo.updated",
        "list.deleted",
    ]
    job = got[3][1]
    assert (job["id"], job["kind"], job["status"]) == (job_id, "export", "queued")
    assert got[6][1]["list_id"] == other

    # Carol saw nothing of alice's lists; her own change reaches her, after all of the above.
    with emitter.app_context():
        todos.create_todo(user(carol), title="Sentinel")
        db.session.remove()
    got = carol_live.wait_for(lambda events: len(events) >= 1)
    assert [(name, data["title"]) for name, data in got] == [("todo.created", "Sentinel")]


def test_a_non_member_gets_none_of_a_thousand_events(
    emitter: Flask,
    server: SocketServer,
    live_clients: Connect,
    alice: Account,
    bob: Account,
    make_account: Any,
) -> None:
    carol = make_account("carol")
    shared = share(alice, "Shared", "bob")
    bob_live = live_clients(server.url, bob.token)
    carol_live = live_clients(server.url, carol.token)

    with emitter.app_context():
        actor = user(alice)
        ids = [todos.create_todo(actor, title=f"t{n}", list_id=shared).id for n in range(500)]
        for todo_id in ids[:250]:
            todos.complete_todo(actor, todo_id)
        for todo_id in ids[250:]:
            todos.delete_todo(actor, todo_id)
        todos.create_todo(user(carol), title="Sentinel")
        db.session.remove()

    got = bob_live.wait_for(lambda events: len(events) >= 1000, timeout=120)
    assert len(got) == 1000
    assert names(got).count("todo.created") == 500
    assert names(got).count("todo.updated") == 250
    assert names(got).count("todo.deleted") == 250
    # The sentinel was sent after the thousand, through the same queue, in order.
    got = carol_live.wait_for(lambda events: len(events) >= 1)
    assert [(name, data["title"]) for name, data in got] == [("todo.created", "Sentinel")]


def test_a_change_made_through_one_process_reaches_clients_of_another(
    app: Flask,
    redis_url: str,
    tmp_path: Path,
    live_clients: Connect,
    alice: Account,
    bob: Account,
    make_account: Any,
) -> None:
    carol = make_account("carol")
    shared = share(alice, "Shared", "bob")
    env = {**queue_env(app), "TODOSCALE_SOCKETIO_MESSAGE_QUEUE": redis_url}
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    with (
        running(SocketServer(database, tmp_path, env)) as first,
        running(SocketServer(database, tmp_path, env)) as second,
    ):
        bob_live = live_clients(second.url, bob.token)
        carol_live = live_clients(second.url, carol.token)
        alice_live = live_clients(first.url, alice.token)
        new = {"title": "Milk", "list_id": shared}
        todo = call("POST", f"{first.url}/api/v1/todos", alice.token, new)
        got = bob_live.wait_for_event("todo.created", lambda data: data["id"] == todo["id"])
        assert got == todo
        # And back: a change through the second reaches the first's client.
        call("PATCH", f"{second.url}/api/v1/todos/{todo['id']}", bob.token, {"completed": True})
        updated = alice_live.wait_for_event("todo.updated", lambda data: data["id"] == todo["id"])
        assert updated["completed"] is True
        call("POST", f"{first.url}/api/v1/todos", carol.token, {"title": "Sentinel"})
        got = carol_live.wait_for(lambda events: len(events) >= 1)
        assert [(name, data["title"]) for name, data in got] == [("todo.created", "Sentinel")]


def test_membership_changes_take_effect_without_reconnecting(
    server: SocketServer,
    live_clients: Connect,
    alice: Account,
    bob: Account,
    make_account: Any,
) -> None:
    carol = make_account("carol")
    shared = share(alice, "Shared", "bob")
    api = f"{server.url}/api/v1"
    bob_live = live_clients(server.url, bob.token)
    carol_live = live_clients(server.url, carol.token)

    call("POST", f"{api}/lists/{shared}/members", alice.token, {"username": "carol"})
    joined = carol_live.wait_for_event("list.updated", lambda data: data["id"] == shared)
    assert joined["members"] == ["alice", "bob", "carol"]
    todo = call("POST", f"{api}/todos", alice.token, {"title": "Milk", "list_id": shared})
    assert carol_live.wait_for_event("todo.created", lambda data: data["id"] == todo["id"]) == todo

    call("DELETE", f"{api}/lists/{shared}/members/carol", alice.token)
    assert carol_live.wait_for_event("list.deleted", lambda data: True) == {"id": shared}
    seen = len(carol_live.events)
    after = call("POST", f"{api}/todos", alice.token, {"title": "Bread", "list_id": shared})
    bob_live.wait_for_event("todo.created", lambda data: data["id"] == after["id"])
    call("POST", f"{api}/todos", carol.token, {"title": "Sentinel"})
    got = carol_live.wait_for(lambda events: len(events) > seen)
    assert [(name, data["title"]) for name, data in got[seen:]] == [("todo.created", "Sentinel")]


def _emitting_app(app: Flask, folder: Path, message_queue: str) -> Flask:
    """An app on the suite's database that emits its events through `message_queue`."""
    return create_app(
        {
            "ENV_NAME": "testing",
            "INSTANCE_PATH": str(folder),
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "SOCKETIO_MESSAGE_QUEUE": message_queue,
            "REALTIME": "emit",
        }
    )


def test_a_hung_message_queue_never_holds_a_committed_change(
    app: Flask, redis_server: RedisServer, tmp_path: Path, alice: Account
) -> None:
    emitting = _emitting_app(app, tmp_path, redis_server.url)
    done: list[str] = []

    def write() -> None:
        with emitting.app_context():
            done.append(todos.create_todo(user(alice), title="Milk").id)
            db.session.remove()

    redis_server.pause()
    writer = threading.Thread(target=write, daemon=True)
    try:
        started = time.monotonic()
        writer.start()
        writer.join(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        redis_server.resume()  # also frees a writer still stuck on it
        writer.join(timeout=10)
        with emitting.app_context():
            db.session.remove()
            db.engine.dispose()
    assert elapsed < 3, elapsed
    [todo_id] = done
    assert alice.get(f"/api/v1/todos/{todo_id}").status_code == 200


def test_a_hung_message_queue_costs_one_timeout_not_one_per_write(
    app: Flask, redis_server: RedisServer, tmp_path: Path, alice: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Redis hung under load (tests/chaos/test_redis_faults.py) made every write wait for two
    publish timeouts (python-socketio tries twice): the emitter must step aside instead."""
    emitting = _emitting_app(app, tmp_path, redis_server.url)
    attempts: list[int | None] = []
    real = redis.Redis.publish

    def counting(self: redis.Redis, channel: str, message: str) -> Any:
        attempts.append(None)
        answer = real(self, channel, message)
        attempts[-1] = answer
        return answer

    monkeypatch.setattr(redis.Redis, "publish", counting)

    def write(title: str) -> None:
        with emitting.app_context():
            todos.create_todo(user(alice), title=title)
            db.session.remove()

    try:
        write("Before")
        assert attempts == [0], attempts  # published (no subscriber listens here)
        redis_server.pause()
        try:
            for n in range(5):
                write(f"Hung {n}")
        finally:
            redis_server.resume()
        assert len(attempts) == 2, attempts  # one attempt timed out, then none while it hung
        time.sleep(FailFastRedisManager.FIRST_PAUSE + 0.1)
        write("After")
        assert attempts[2:] == [0], attempts  # back: published again after the pause
    finally:
        with emitting.app_context():
            db.session.remove()
            db.engine.dispose()
