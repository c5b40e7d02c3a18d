"""services.reminders: each member hears once of each todo coming due, however often it runs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import Recorder
from todoscale.extensions import db
from todoscale.models import Notification, Todo
from todoscale.services import lists, todos
from todoscale.services.accounts import register_user
from todoscale.services.reminders import send_due_reminders
from todoscale.signals import notifications_created

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.fixture
def people(ctx):
    """An owner with a list shared with two members, and an outsider with a list of their own."""
    olive, mia, max_, otto = (
        register_user(name, f"{name}@example.com", "long enough pw")
        for name in ("olive", "mia", "max", "otto")
    )
    shared = lists.create_list(olive, "Shared").todo_list.id
    lists.share_list(olive, shared, username="mia")
    lists.share_list(olive, shared, username="max")
    return {"olive": olive, "mia": mia, "max": max_, "otto": otto, "shared": shared}


def _todo(people, title, due_at, list_id=None, actor="olive"):
    return todos.create_todo(
        people[actor], title=title, list_id=list_id or people["shared"], due_at=due_at
    ).id


def _sent() -> list[tuple[str, str, datetime]]:
    db.session.expire_all()
    rows = db.session.execute(
        select(Notification.user_id, Notification.todo_id, Notification.due_at)
    ).all()
    return sorted((user_id, todo_id, due_at) for user_id, todo_id, due_at in rows)


def test_every_member_is_notified_once_of_a_todo_coming_due(people):
    todo_id = _todo(people, "Pay rent", NOW + timedelta(minutes=10))
    recorder = Recorder()
    with notifications_created.connected_to(recorder):
        assert send_due_reminders(NOW) == 3
        assert send_due_reminders(NOW) == 0
        assert send_due_reminders(NOW + timedelta(minutes=5)) == 0
    member_ids = sorted(people[name].id for name in ("olive", "mia", "max"))
    assert _sent() == [(uid, todo_id, NOW + timedelta(minutes=10)) for uid in member_ids]
    [(sender, kwargs)] = recorder.calls
    assert sender is send_due_reminders
    announced = kwargs["notifications"]
    assert sorted(n.user_id for n in announced) == member_ids
    assert {(n.title, n.kind, n.list_id, n.read_at) for n in announced} == {
        ("Pay rent", "reminder", people["shared"], None)
    }
    assert db.session.get(Todo, todo_id).reminded_for == NOW + timedelta(minutes=10)


def test_only_open_todos_due_within_the_window_are_reminded(people):
    window = timedelta(minutes=15)
    due = _todo(people, "due at the edge", NOW + window)
    _todo(people, "due later", NOW + window + timedelta(seconds=1))
    _todo(people, "overdue", NOW - timedelta(seconds=1))
    _todo(people, "undated", None)
    done = _todo(people, "done", NOW + timedelta(minutes=1))
    todos.complete_todo(people["olive"], done)
    otto_inbox = lists.default_list_id(people["otto"])
    mine = _todo(people, "private", NOW + timedelta(minutes=1), list_id=otto_inbox, actor="otto")

    assert send_due_reminders(NOW) == 4
    reminded = {(user_id, todo_id) for user_id, todo_id, _ in _sent()}
    assert {todo_id for _, todo_id in reminded} == {due, mine}
    assert {user_id for user_id, todo_id in reminded if todo_id == mine} == {people["otto"].id}


def test_a_new_due_time_earns_a_new_reminder(people):
    todo_id = _todo(people, "Dentist", NOW + timedelta(minutes=5))
    assert send_due_reminders(NOW) == 3
    later = NOW + timedelta(hours=2)
    todos.edit_todo(people["mia"], todo_id, {"due_at": later + timedelta(minutes=10)})
    assert send_due_reminders(NOW) == 0  # not due yet
    assert send_due_reminders(later) == 3
    assert send_due_reminders(later) == 0
    assert [due for _, _, due in _sent()].count(later + timedelta(minutes=10)) == 3
    assert len(_sent()) == 6


def test_a_due_time_moved_away_and_back_is_not_reminded_twice_nor_blocks_others(people):
    first, other = NOW + timedelta(minutes=5), NOW + timedelta(minutes=8)
    todo_id = _todo(people, "Dentist", first)
    assert send_due_reminders(NOW) == 3
    todos.edit_todo(people["mia"], todo_id, {"due_at": other})
    assert send_due_reminders(NOW) == 3
    todos.edit_todo(people["mia"], todo_id, {"due_at": first})
    neighbour = _todo(people, "Pharmacy", NOW + timedelta(minutes=6))
    assert send_due_reminders(NOW) == 3  # the neighbour's; the dentist's was sent already
    assert send_due_reminders(NOW) == 0
    assert sorted(due for _, tid, due in _sent() if tid == todo_id) == [first] * 3 + [other] * 3
    assert [tid for _, tid, _ in _sent()].count(neighbour) == 3


def test_a_member_added_later_is_not_notified_of_the_old_reminder(people):
    todo_id = _todo(people, "Pay rent", NOW + timedelta(minutes=10))
    assert send_due_reminders(NOW) == 3
    lists.share_list(people["olive"], people["shared"], username="otto")
    assert send_due_reminders(NOW) == 0
    assert people["otto"].id not in {user_id for user_id, _, _ in _sent()}
    assert {todo for _, todo, _ in _sent()} == {todo_id}


def test_many_todos_are_found_in_batches_and_all_reminded(people, monkeypatch):
    monkeypatch.setattr("todoscale.services.reminders.BATCH", 3)
    ids = {_todo(people, f"t{n}", NOW + timedelta(minutes=1, seconds=n)) for n in range(8)}
    assert send_due_reminders(NOW) == 8 * 3
    assert {todo_id for _, todo_id, _ in _sent()} == ids
    assert send_due_reminders(NOW) == 0


def test_the_search_is_one_query_per_batch_not_one_per_todo(people, app: Flask):
    for n in range(6):
        _todo(people, f"t{n}", NOW + timedelta(minutes=2))
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement.split()[0].upper())

    from sqlalchemy import event

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert send_due_reminders(NOW) == 18
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    # find, members, reminders sent before, 6 claims, the inserts, the reload
    assert statements.count("UPDATE") == 6
    assert statements.count("SELECT") <= 4, statements


def test_two_concurrent_sweeps_notify_once(people, app: Flask):
    ids = [_todo(people, f"t{n}", NOW + timedelta(minutes=3)) for n in range(20)]
    db.session.commit()
    barrier = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                counts.append(send_due_reminders(NOW))
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001  (reported by the test below)
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sum(counts) == 20 * 3
    count = db.session.scalar(select(func.count()).select_from(Notification))
    assert count == 20 * 3
    assert {todo_id for _, todo_id, _ in _sent()} == set(ids)


def test_a_given_window_reaches_further_than_the_configured_one(people):
    todo_id = _todo(people, "Renew passport", NOW + timedelta(minutes=90))

    assert send_due_reminders(NOW) == 0  # the app's window: 15 minutes
    assert send_due_reminders(NOW, window=timedelta(hours=2)) == 3

    assert {due for _, sent_todo, due in _sent() if sent_todo == todo_id} == {
        NOW + timedelta(minutes=90)
    }
