"""services.lists: visibility, ownership and membership, called directly."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import Recorder
from todoscale.exceptions import AccessDeniedError, ConflictError, NotFoundError, ValidationError
from todoscale.extensions import db
from todoscale.models import Membership, Todo, TodoList
from todoscale.services import lists
from todoscale.services.accounts import register_user
from todoscale.services.todos import create_todo
from todoscale.signals import list_deleted, list_updated, membership_changed


@pytest.fixture
def people(ctx):
    """Three users: an owner, a member-to-be and an outsider."""
    return {
        name: register_user(name, f"{name}@example.com", "long enough pw")
        for name in ("olive", "mia", "otto")
    }


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_create_list_trims_the_name_and_announces_it(people):
    recorder = Recorder()

    with list_updated.connected_to(recorder):
        info = lists.create_list(people["olive"], "  Groceries\n")

    assert info.todo_list.name == "Groceries"
    assert info.members == ["olive"]
    assert info.todo_count == 0
    assert info.todo_list.is_default is False
    assert recorder.calls == [(lists.create_list, {"todo_list": info.todo_list})]


def test_create_list_with_an_empty_name_writes_and_announces_nothing(people):
    recorder = Recorder()
    before = _count(TodoList)

    with list_updated.connected_to(recorder), pytest.raises(ValidationError):
        lists.create_list(people["olive"], "   ")

    assert recorder.calls == []
    assert _count(TodoList) == before


def test_list_lists_shows_default_first_then_oldest_first(people):
    olive, mia = people["olive"], people["mia"]
    first = lists.create_list(olive, "First").todo_list.id
    shared = lists.create_list(mia, "Shared").todo_list.id
    lists.share_list(mia, shared, username="olive")
    last = lists.create_list(olive, "Last").todo_list.id

    infos = lists.list_lists(olive)

    assert [info.todo_list.name for info in infos] == ["Inbox", "First", "Shared", "Last"]
    assert [info.todo_list.id for info in infos][1:] == [first, shared, last]
    assert infos[2].members == ["mia", "olive"]


def test_describe_counts_each_lists_todos(people):
    olive = people["olive"]
    groceries = lists.create_list(olive, "Groceries").todo_list.id
    for title in ("a", "b", "c"):
        create_todo(olive, title=title, list_id=groceries)
    create_todo(olive, title="inbox")

    counts = {info.todo_list.name: info.todo_count for info in lists.list_lists(olive)}

    assert counts == {"Inbox": 1, "Groceries": 3}


def test_outsider_cannot_see_a_list(people):
    groceries = lists.create_list(people["olive"], "Groceries").todo_list.id

    with pytest.raises(NotFoundError):
        lists.get_list(people["otto"], groceries)
    assert groceries not in lists.visible_list_ids(people["otto"])


def test_owner_renames_and_it_is_announced(people):
    groceries = lists.create_list(people["olive"], "Groceries").todo_list.id
    recorder = Recorder()

    with list_updated.connected_to(recorder):
        info = lists.rename_list(people["olive"], groceries, " Food ")

    assert info.todo_list.name == "Food"
    assert recorder.calls == [(lists.rename_list, {"todo_list": info.todo_list})]


@pytest.mark.parametrize(("actor", "error"), [("mia", AccessDeniedError), ("otto", NotFoundError)])
def test_only_the_owner_renames_and_nothing_is_announced_otherwise(people, actor, error):
    groceries = lists.create_list(people["olive"], "Groceries").todo_list.id
    lists.share_list(people["olive"], groceries, username="mia")
    recorder = Recorder()

    with list_updated.connected_to(recorder), pytest.raises(error):
        lists.rename_list(people[actor], groceries, "Mine")

    assert recorder.calls == []
    db.session.expire_all()
    assert db.session.get(TodoList, groceries).name == "Groceries"


def test_delete_list_removes_its_todos_and_memberships_and_names_who_saw_it(people):
    olive = people["olive"]
    groceries = lists.create_list(olive, "Groceries").todo_list.id
    lists.share_list(olive, groceries, username="mia")
    create_todo(olive, title="milk", list_id=groceries)
    kept = create_todo(olive, title="inbox").id
    recorder = Recorder()

    with list_deleted.connected_to(recorder):
        lists.delete_list(olive, groceries)

    assert len(recorder.calls) == 1
    sender, kwargs = recorder.calls[0]
    assert sender is lists.delete_list
    assert kwargs["list_id"] == groceries
    assert sorted(kwargs["member_ids"]) == sorted([olive.id, people["mia"].id])
    assert db.session.get(TodoList, groceries) is None
    assert db.session.scalars(select(Todo.id)).all() == [kept]
    assert _count(Membership) == 3  # each user's Inbox


@pytest.mark.parametrize(
    ("actor", "which", "error"),
    [
        ("olive", "inbox", ConflictError),
        ("mia", "shared", AccessDeniedError),
        ("otto", "shared", NotFoundError),
    ],
)
def test_refused_deletes_remove_and_announce_nothing(people, actor, which, error):
    olive = people["olive"]
    shared = lists.create_list(olive, "Shared").todo_list.id
    lists.share_list(olive, shared, username="mia")
    target = lists.default_list_id(olive) if which == "inbox" else shared
    create_todo(olive, title="keep me", list_id=target)
    recorder = Recorder()
    before = (_count(TodoList), _count(Todo), _count(Membership))

    with list_deleted.connected_to(recorder), pytest.raises(error):
        lists.delete_list(people[actor], target)

    assert recorder.calls == []
    assert (_count(TodoList), _count(Todo), _count(Membership)) == before


def test_share_list_adds_a_member_and_announces_it(people):
    olive, mia = people["olive"], people["mia"]
    groceries = lists.create_list(olive, "Groceries").todo_list.id
    recorder = Recorder()

    with membership_changed.connected_to(recorder):
        info = lists.share_list(olive, groceries, username="MIA")

    assert info.members == ["olive", "mia"]
    assert recorder.calls == [
        (lists.share_list, {"list_id": groceries, "user_id": mia.id, "added": True})
    ]
    assert lists.visible_list(mia, groceries).id == groceries


@pytest.mark.parametrize(
    ("actor", "username", "error"),
    [
        ("olive", "mia", ConflictError),  # already a member
        ("olive", "olive", ConflictError),  # the owner
        ("olive", "nobody", NotFoundError),
        ("olive", "x" * 100, NotFoundError),
        ("mia", "otto", AccessDeniedError),
        ("otto", "otto", NotFoundError),
    ],
)
def test_refused_shares_change_and_announce_nothing(people, actor, username, error):
    groceries = lists.create_list(people["olive"], "Groceries").todo_list.id
    lists.share_list(people["olive"], groceries, username="mia")
    recorder = Recorder()
    before = _count(Membership)

    with membership_changed.connected_to(recorder), pytest.raises(error):
        lists.share_list(people[actor], groceries, username=username)

    assert recorder.calls == []
    assert _count(Membership) == before


@pytest.mark.parametrize("actor", ["olive", "mia"])
def test_owner_or_the_member_themself_removes_a_member(people, actor):
    olive, mia = people["olive"], people["mia"]
    groceries = lists.create_list(olive, "Groceries").todo_list.id
    lists.share_list(olive, groceries, username="mia")
    recorder = Recorder()

    with membership_changed.connected_to(recorder):
        lists.remove_member(people[actor], groceries, username="mia")

    assert recorder.calls == [
        (lists.remove_member, {"list_id": groceries, "user_id": mia.id, "added": False})
    ]
    with pytest.raises(NotFoundError):
        lists.visible_list(mia, groceries)


@pytest.mark.parametrize(
    ("actor", "username", "error"),
    [
        ("mia", "olive", AccessDeniedError),
        ("mia", "otto", AccessDeniedError),
        ("olive", "olive", ConflictError),
        ("olive", "nobody", NotFoundError),
        ("otto", "mia", NotFoundError),
    ],
)
def test_refused_removals_change_and_announce_nothing(people, actor, username, error):
    olive = people["olive"]
    groceries = lists.create_list(olive, "Groceries").todo_list.id
    lists.share_list(olive, groceries, username="mia")
    if username == "otto":
        lists.share_list(olive, groceries, username="otto")
    recorder = Recorder()
    before = _count(Membership)

    with membership_changed.connected_to(recorder), pytest.raises(error):
        lists.remove_member(people[actor], groceries, username=username)

    assert recorder.calls == []
    assert _count(Membership) == before
