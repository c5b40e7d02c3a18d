"""services.todos: creating, editing and deleting todos, called directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from tests.conftest import Recorder
from todoscale.exceptions import NotFoundError, PreconditionFailedError, ValidationError
from todoscale.extensions import db
from todoscale.models import Todo
from todoscale.services import lists, todos
from todoscale.services.accounts import register_user
from todoscale.signals import todo_created, todo_deleted, todo_updated


@pytest.fixture
def people(ctx):
    """An owner with a list shared with a member, and an outsider."""
    olive, mia, otto = (
        register_user(name, f"{name}@example.com", "long enough pw")
        for name in ("olive", "mia", "otto")
    )
    shared = lists.create_list(olive, "Shared").todo_list.id
    lists.share_list(olive, shared, username="mia")
    return {"olive": olive, "mia": mia, "otto": otto, "shared": shared}


def _stored(todo_id: str) -> Todo | None:
    db.session.expire_all()
    return db.session.get(Todo, todo_id)


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(Todo))


def test_create_goes_to_the_default_list_and_is_announced_after_commit(people):
    olive = people["olive"]
    recorder = Recorder()
    committed = []

    def check_committed(sender, todo):
        with db.engine.connect() as other:  # another connection sees only committed rows
            committed.append(other.scalar(select(Todo.title).where(Todo.id == todo.id)))

    with todo_created.connected_to(recorder), todo_created.connected_to(check_committed):
        todo = todos.create_todo(olive, title="  Buy milk ", notes=" as is ")

    assert todo.list_id == lists.default_list_id(olive)
    assert (todo.title, todo.notes, todo.version) == ("Buy milk", " as is ", 1)
    assert todo.creator_id == olive.id
    assert todo.completed is False
    assert todo.completed_at is None
    assert recorder.calls == [(todos.create_todo, {"todo": todo})]
    assert committed == ["Buy milk"]


def test_member_creates_in_a_shared_list(people):
    todo = todos.create_todo(people["mia"], title="from mia", list_id=people["shared"])

    assert todos.visible_todo(people["olive"], todo.id).creator_id == people["mia"].id


def test_due_at_is_kept_in_utc(people):
    due = datetime(2026, 11, 22, 10, 15, tzinfo=timezone(timedelta(hours=2)))

    todo = todos.create_todo(people["olive"], title="x", due_at=due)

    assert _stored(todo.id).due_at == datetime(2026, 11, 22, 8, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("actor", "fields", "error"),
    [
        ("otto", {"list_id": "shared"}, NotFoundError),
        ("olive", {"list_id": "0" * 32}, NotFoundError),
        ("olive", {"title": "   "}, ValidationError),
        ("olive", {"title": "x" * 501}, ValidationError),
        ("olive", {"notes": "x" * 10_001}, ValidationError),
        ("olive", {"notes": "a\x00b"}, ValidationError),
        ("olive", {"due_at": datetime(2026, 1, 1)}, ValidationError),
    ],
)
def test_refused_creates_write_and_announce_nothing(people, actor, fields, error):
    if fields.get("list_id") == "shared":
        fields = {**fields, "list_id": people["shared"]}
    recorder = Recorder()

    with todo_created.connected_to(recorder), pytest.raises(error):
        todos.create_todo(people[actor], **{"title": "x", **fields})

    assert recorder.calls == []
    assert _count() == 0


def test_edit_changes_fields_bumps_the_version_and_is_announced(people):
    olive = people["olive"]
    todo = todos.create_todo(olive, title="old")
    created_at, etag = todo.created_at, todos.etag_of(todo)
    recorder = Recorder()

    with todo_updated.connected_to(recorder):
        edited = todos.edit_todo(olive, todo.id, {"title": " new ", "notes": "n"}, if_match=etag)

    assert (edited.title, edited.notes, edited.version) == ("new", "n", 2)
    assert edited.updated_at > created_at
    assert todos.etag_of(edited) != etag
    assert recorder.calls == [
        (todos.edit_todo, {"todo": edited, "previous_list_id": edited.list_id})
    ]


def test_moving_a_todo_announces_the_list_it_left(people):
    olive = people["olive"]
    todo = todos.create_todo(olive, title="x")
    inbox = todo.list_id
    recorder = Recorder()

    with todo_updated.connected_to(recorder):
        todos.edit_todo(olive, todo.id, {"list_id": people["shared"]})

    assert _stored(todo.id).list_id == people["shared"]
    assert recorder.calls[0][1]["previous_list_id"] == inbox


def test_an_edit_that_changes_nothing_keeps_the_version_and_announces_nothing(people):
    olive = people["olive"]
    todo = todos.create_todo(olive, title="same", notes="n")
    recorder = Recorder()

    with todo_updated.connected_to(recorder):
        todos.edit_todo(olive, todo.id, {"title": "  same ", "notes": "n", "completed": False})

    assert recorder.calls == []
    assert _stored(todo.id).version == 1


def test_completing_sets_completed_at_and_reopening_clears_it(people):
    olive = people["olive"]
    todo = todos.create_todo(olive, title="x")

    done = todos.complete_todo(olive, todo.id)
    assert done.completed is True
    completed_at = done.completed_at
    assert completed_at is not None

    assert todos.complete_todo(olive, todo.id).completed_at == completed_at
    reopened = todos.complete_todo(olive, todo.id, completed=False)
    assert reopened.completed is False
    assert reopened.completed_at is None


def test_stale_if_match_is_refused_and_changes_nothing(people):
    olive = people["olive"]
    todo = todos.create_todo(olive, title="x")
    stale = todos.etag_of(todo)
    todos.edit_todo(olive, todo.id, {"title": "y"})
    recorder = Recorder()

    with todo_updated.connected_to(recorder), pytest.raises(PreconditionFailedError):
        todos.edit_todo(olive, todo.id, {"title": "z"}, if_match=stale)

    assert recorder.calls == []
    assert (_stored(todo.id).title, _stored(todo.id).version) == ("y", 2)


def test_a_stale_version_is_refused_and_changes_nothing(people):
    olive = people["olive"]
    todo = todos.create_todo(olive, title="x")
    todos.edit_todo(olive, todo.id, {"title": "y"}, version=1)
    recorder = Recorder()

    with todo_updated.connected_to(recorder), pytest.raises(PreconditionFailedError):
        todos.edit_todo(olive, todo.id, {"title": "z"}, version=1)

    assert recorder.calls == []
    assert (_stored(todo.id).title, _stored(todo.id).version) == ("y", 2)
    assert todos.edit_todo(olive, todo.id, {"title": "z"}, version=2).version == 3


@pytest.mark.parametrize(
    "changes",
    [
        {"title": "changed", "notes": "\x00"},
        {"title": "changed", "due_at": datetime(2026, 1, 1)},
        {"title": "changed", "list_id": "0" * 32},
        {"title": "changed", "completed": True, "list_id": "outsider"},
    ],
)
def test_a_refused_edit_leaves_every_field_as_it_was(people, changes):
    olive = people["olive"]
    todo = todos.create_todo(olive, title="original")
    if changes.get("list_id") == "outsider":
        changes = {**changes, "list_id": lists.default_list_id(people["otto"])}
    recorder = Recorder()

    with todo_updated.connected_to(recorder), pytest.raises((ValidationError, NotFoundError)):
        todos.edit_todo(olive, todo.id, changes)
    todos.create_todo(olive, title="the next unit of work in this session")

    stored = _stored(todo.id)
    assert (stored.title, stored.completed, stored.version) == ("original", False, 1)
    assert recorder.calls == []


def test_editing_a_field_that_is_not_editable_is_a_programming_error(people):
    todo = todos.create_todo(people["olive"], title="x")

    with pytest.raises(ValueError, match="creator_id"):
        todos.edit_todo(people["olive"], todo.id, {"creator_id": people["otto"].id})


def test_outsider_cannot_see_edit_or_delete(people):
    todo = todos.create_todo(people["olive"], title="x", list_id=people["shared"])
    otto = people["otto"]

    with pytest.raises(NotFoundError):
        todos.visible_todo(otto, todo.id)
    with pytest.raises(NotFoundError):
        todos.edit_todo(otto, todo.id, {"title": "mine"})
    with pytest.raises(NotFoundError):
        todos.delete_todo(otto, todo.id)
    assert _stored(todo.id).title == "x"


def test_delete_removes_the_todo_and_is_announced(people):
    todo = todos.create_todo(people["olive"], title="x", list_id=people["shared"])
    todo_id = todo.id
    recorder = Recorder()

    with todo_deleted.connected_to(recorder):
        todos.delete_todo(people["mia"], todo_id)

    assert _stored(todo_id) is None
    assert recorder.calls == [
        (todos.delete_todo, {"todo_id": todo_id, "list_id": people["shared"]})
    ]


def test_a_failed_delete_announces_nothing(people):
    recorder = Recorder()

    with todo_deleted.connected_to(recorder), pytest.raises(NotFoundError):
        todos.delete_todo(people["olive"], "0" * 32)

    assert recorder.calls == []


def test_created_and_edited_todos_hold_every_column_as_stored(people):
    olive = people["olive"]
    created = todos.create_todo(olive, title="as stored", notes="n")
    edited = todos.edit_todo(olive, created.id, {"completed": True})

    columns = [column.key for column in Todo.__table__.columns]
    assert {name: getattr(created, name) for name in columns} | {
        "completed": True,
        "completed_at": edited.completed_at,
        "updated_at": edited.updated_at,
        "version": 2,
    } == {name: getattr(_stored(created.id), name) for name in columns}
    assert {name: getattr(edited, name) for name in columns} == {
        name: getattr(_stored(created.id), name) for name in columns
    }
