"""services.todos when a list is deleted by another process right after a write committed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete, event, func, select

from tests.conftest import Recorder
from todoscale.extensions import db
from todoscale.models import Todo, TodoList
from todoscale.services import lists, todos
from todoscale.services.accounts import register_user
from todoscale.signals import todo_created, todo_updated


@pytest.fixture
def doomed(ctx) -> Iterator[tuple[object, str, list[str]]]:
    """An owner, a list of theirs, and a switch: name the list in it, and the next commit of
    this session is followed at once by another connection deleting that list (as a
    concurrent `DELETE /lists/{id}` on another process would)."""
    owner = register_user("olive", "olive@example.com", "long enough pw")
    list_id = lists.create_list(owner, "Doomed").todo_list.id
    armed: list[str] = []

    def delete_after_commit(_session: object) -> None:
        while armed:
            gone = armed.pop()
            with db.engine.begin() as other:
                other.execute(delete(Todo).where(Todo.list_id == gone))
                other.execute(delete(TodoList).where(TodoList.id == gone))

    event.listen(db.session, "after_commit", delete_after_commit)
    try:
        yield owner, list_id, armed
    finally:
        event.remove(db.session, "after_commit", delete_after_commit)


def test_a_todo_whose_list_is_deleted_just_after_its_commit_stands_as_written(doomed):
    """The create committed first, so it is acknowledged with what was written (no reload
    after the commit, which found the row gone and answered 500 once); the delete that
    came after it then takes the todo with its list."""
    owner, list_id, armed = doomed
    created = Recorder()
    todo_created.connect(created)
    armed.append(list_id)
    try:
        todo = todos.create_todo(owner, title="late", list_id=list_id)
    finally:
        todo_created.disconnect(created)
    assert (todo.title, todo.list_id) == ("late", list_id)
    assert len(created.calls) == 1
    assert db.session.scalar(select(func.count()).select_from(Todo)) == 0


def test_an_edit_whose_list_is_deleted_just_after_its_commit_stands_as_written(doomed):
    owner, list_id, armed = doomed
    todo_id = todos.create_todo(owner, title="early", list_id=list_id).id
    updated = Recorder()
    todo_updated.connect(updated)
    armed.append(list_id)
    try:
        todo = todos.edit_todo(owner, todo_id, {"title": "renamed"})
    finally:
        todo_updated.disconnect(updated)
    assert todo.title == "renamed"
    assert len(updated.calls) == 1
