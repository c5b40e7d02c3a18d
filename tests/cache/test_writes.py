"""cache/writes.py: every write path bumps the scopes of the rows it changes, without being
told. Around each service call that writes, every cached read a user could make (token
lookups, visible lists, first pages, single todos) is compared with the same read made
without the cache: a row changed without its scope bumped shows as a difference."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from todoscale.cache import local_cache
from todoscale.cache.local import EXTENSION
from todoscale.exceptions import TodoscaleError
from todoscale.extensions import db
from todoscale.models import Todo, User, utcnow
from todoscale.services import (
    accounts,
    jobs,
    lists,
    monitoring,
    profile,
    reminders,
    seeding,
    todos,
    tokens,
    transfer,
)

PASSWORD = "long enough pw"


@contextmanager
def _uncached(app: Flask) -> Iterator[None]:
    """The services as they answer without a cache: straight from the database."""
    cache = app.extensions.pop(EXTENSION)
    try:
        yield
    finally:
        app.extensions[EXTENSION] = cache


def _outcome(read: Callable[[], Any]) -> Any:
    """What a read answers, comparable: users as their cached columns, refusals by kind."""
    try:
        found = read()
    except TodoscaleError as exc:
        return type(exc).__name__
    if isinstance(found, tuple) and found and isinstance(found[0], User):
        user, token_id = found
        return {name: getattr(user, name) for name in accounts.TOKEN_USER_COLUMNS}, token_id
    return found


class World:
    """Users, a shared list, todos and tokens; and every cached read over them."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.alice, self.bob, self.carol = (
            accounts.register_user(name, f"{name}@example.com", PASSWORD)
            for name in ("alice", "bob", "carol")
        )
        self.shared = lists.create_list(self.alice, "Shared").todo_list.id
        lists.share_list(self.alice, self.shared, username="bob")
        self.inbox = lists.default_list_id(self.alice)
        self.todos = [
            todos.create_todo(self.alice, title="mine").id,
            todos.create_todo(self.alice, title="ours", list_id=self.shared).id,
            todos.create_todo(self.bob, title="his").id,
        ]
        self.tokens = {
            user.id: accounts.issue_token(user)[0] for user in (self.alice, self.bob, self.carol)
        }

    def reads(self) -> dict[str, Callable[[], Any]]:
        """Every cached read these users could make, by name."""
        found: dict[str, Callable[[], Any]] = {}
        users = [db.session.get(User, user.id) for user in (self.alice, self.bob, self.carol)]
        for user in users:
            assert user is not None
            token = self.tokens[user.id]
            found[f"token of {user.username}"] = lambda t=token: accounts.authenticate_token(t)
            found[f"lists of {user.username}"] = lambda u=user: lists.visible_list_ids(u)
            for list_id in (None, self.inbox, self.shared):
                for completed in (None, False):
                    found[f"page {list_id} {completed} of {user.username}"] = (
                        lambda u=user, li=list_id, c=completed: todos.list_todos(
                            u, list_id=li, completed=c
                        )
                    )
            for todo_id in self.todos:
                found[f"todo {todo_id} of {user.username}"] = lambda u=user, t=todo_id: (
                    todos.get_todo(u, t)
                )
        return found

    def check(self, write: Callable[[], Any]) -> None:
        """Warm every cached read, run `write`, then require each cached read to answer what
        the database answers."""
        reads = self.reads()
        for read in reads.values():
            _outcome(read)
        assert local_cache() is not None
        write()
        db.session.expire_all()
        stale = {}
        for name, read in self.reads().items():
            cached = _outcome(read)
            with _uncached(self.app):
                fresh = _outcome(read)
            if cached != fresh:
                stale[name] = (cached, fresh)
        assert stale == {}, f"cached reads that a write left stale: {stale}"


@pytest.fixture
def world(app, ctx) -> World:
    """The world, built in the test's app context."""
    return World(app)


def _import(world: World) -> None:
    blank = dict.fromkeys(transfer.FIELDS)
    rows = [{**blank, "list": "L", "notes": "", "title": "imported", "completed": False}]
    data = transfer.render(rows, "csv")
    job = jobs.create_import(world.alice, list_id=world.shared, filename="a.csv", data=data)
    jobs.run_job(job.id, worker_name="test")


WRITES: dict[str, Callable[[World], Any]] = {
    "create_todo": lambda w: todos.create_todo(w.bob, title="new", list_id=w.shared),
    "edit_todo": lambda w: todos.edit_todo(w.bob, w.todos[1], {"title": "renamed"}),
    "edit_todo (move)": lambda w: todos.edit_todo(w.alice, w.todos[1], {"list_id": w.inbox}),
    "complete_todo": lambda w: todos.complete_todo(w.alice, w.todos[0]),
    "delete_todo": lambda w: todos.delete_todo(w.bob, w.todos[1]),
    "create_list": lambda w: lists.create_list(w.carol, "Carol's"),
    "rename_list": lambda w: lists.rename_list(w.alice, w.shared, "Renamed"),
    "delete_list": lambda w: lists.delete_list(w.alice, w.shared),
    "share_list": lambda w: lists.share_list(w.alice, w.shared, username="carol"),
    "remove_member": lambda w: lists.remove_member(w.alice, w.shared, username="bob"),
    "leave_list": lambda w: lists.remove_member(w.bob, w.shared, username="bob"),
    "register_user": lambda w: accounts.register_user("dave", "dave@example.com", PASSWORD),
    "issue_token": lambda w: accounts.issue_token(w.alice),
    "revoke_token": lambda w: accounts.revoke_token(w.tokens[w.alice.id]),
    "revoke_user_token": lambda w: tokens.revoke_user_token(
        w.bob, accounts.authenticate_token(w.tokens[w.bob.id])[1]
    ),
    "revoke_user_tokens": lambda w: tokens.revoke_user_tokens(w.bob),
    "purge_expired_tokens": lambda w: accounts.purge_expired_tokens(utcnow() + timedelta(days=999)),
    "set_locale": lambda w: profile.set_locale(w.alice, "zh_Hans"),
    "set_time_zone": lambda w: profile.set_time_zone(w.alice, "Europe/Berlin"),
    "change_password": lambda w: profile.change_password(w.alice, PASSWORD, "another long pw"),
    "authenticate": lambda w: accounts.authenticate("alice", PASSWORD),
    "set_admin": lambda w: monitoring.set_admin("bob", True),
    "seed": lambda w: seeding.seed(users=2, todos=3, password=PASSWORD, prefix="seeded"),
    "import": _import,
    "send_due_reminders": lambda w: reminders.send_due_reminders(),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_write_path_leaves_no_cached_read_stale(world, write):
    world.check(lambda: write(world))


def test_a_due_todo_reminded_leaves_no_cached_read_stale(world):
    todos.edit_todo(world.alice, world.todos[1], {"due_at": utcnow() + timedelta(minutes=1)})
    world.check(lambda: reminders.send_due_reminders(utcnow() + timedelta(minutes=2)))


def test_the_check_catches_a_write_the_session_did_not_see(world):
    # A write on the connection itself, past the session's events: nothing bumps its scope.
    def unseen() -> None:
        statement = update(Todo).where(Todo.id == world.todos[1]).values(title="unseen")
        db.session.connection().execute(statement)
        db.session.commit()

    with pytest.raises(AssertionError, match="left stale"):
        world.check(unseen)


def test_one_users_change_of_language_keeps_every_other_users_token_cached(world, app):
    for token in world.tokens.values():
        accounts.authenticate_token(token)
    cache = local_cache()
    assert cache is not None
    digests = {user_id: accounts._digest(token) for user_id, token in world.tokens.items()}

    profile.set_locale(world.alice, "zh_Hans")

    held = {user_id: cache.get(f"token:{d}") is not None for user_id, d in digests.items()}
    assert held == {world.alice.id: False, world.bob.id: True, world.carol.id: True}
