"""Cached token lookups and memberships across two app instances of one host: a change
made through one is seen by the other at once."""

from __future__ import annotations

import pytest

from tests.conftest import Account
from todoscale import create_app


@pytest.fixture
def twin_clients(cached_apps):
    """Two app instances with the cache on, as two workers or two hosts."""
    return [each.test_client() for each in cached_apps(2)]


def test_a_token_revoked_through_one_instance_fails_at_once_on_the_other(twin_clients):
    one, two = twin_clients
    alice = Account(one, "alice")
    headers = alice.headers
    assert two.get("/api/v1/users/me", headers=headers).status_code == 200  # cached in two

    assert one.delete("/api/v1/tokens", headers=headers).status_code == 204

    assert two.get("/api/v1/users/me", headers=headers).status_code == 401


def test_a_list_shared_through_one_instance_is_seen_at_once_through_the_other(twin_clients):
    one, two = twin_clients
    alice, bob = Account(one, "alice"), Account(one, "bob")
    shared = alice.post("/api/v1/lists", json={"name": "Groceries"}).get_json()
    alice.post("/api/v1/todos", json={"title": "milk", "list_id": shared["id"]})
    bob_there = {"Authorization": f"Bearer {bob.token}"}
    assert two.get("/api/v1/todos", headers=bob_there).get_json()["items"] == []  # cached

    one.post(
        f"/api/v1/lists/{shared['id']}/members", json={"username": "bob"}, headers=alice.headers
    )

    titles = [t["title"] for t in two.get("/api/v1/todos", headers=bob_there).get_json()["items"]]
    assert titles == ["milk"]


@pytest.mark.parametrize(
    "revoke_access",
    [
        pytest.param(
            lambda alice, list_id: alice.delete(f"/api/v1/lists/{list_id}/members/bob"),
            id="member removed",
        ),
        pytest.param(
            lambda alice, list_id: alice.delete(f"/api/v1/lists/{list_id}"), id="list deleted"
        ),
    ],
)
def test_losing_a_list_through_one_instance_shows_at_once_on_the_other(twin_clients, revoke_access):
    one, two = twin_clients
    alice, bob = Account(one, "alice"), Account(one, "bob")
    shared = alice.post("/api/v1/lists", json={"name": "Groceries"}).get_json()
    alice.post("/api/v1/todos", json={"title": "milk", "list_id": shared["id"]})
    alice.post(f"/api/v1/lists/{shared['id']}/members", json={"username": "bob"})
    bob_there = {"Authorization": f"Bearer {bob.token}"}
    assert len(two.get("/api/v1/todos", headers=bob_there).get_json()["items"]) == 1

    assert revoke_access(alice, shared["id"]).status_code == 204

    assert two.get("/api/v1/todos", headers=bob_there).get_json()["items"] == []


def test_auto_mode_turns_the_cache_on_only_for_sqlite(tmp_path):
    sqlite = create_app(
        {
            "ENV_NAME": "testing",
            "INSTANCE_PATH": str(tmp_path / "a"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/a.db",
        }
    )
    server = create_app(
        {
            "ENV_NAME": "testing",
            "INSTANCE_PATH": str(tmp_path / "b"),
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/x",
        }
    )
    assert "todoscale.local_cache" in sqlite.extensions
    assert "todoscale.local_cache" not in server.extensions


def _titles(client, headers, query=""):
    return [
        t["title"] for t in client.get(f"/api/v1/todos{query}", headers=headers).get_json()["items"]
    ]


def test_first_pages_reflect_every_write_made_through_the_other_instance(twin_clients):
    one, two = twin_clients
    alice = Account(one, "alice")
    there = alice.headers
    first = alice.add_todo("first")
    assert _titles(two, there) == ["first"]  # now cached in two
    assert _titles(two, there, "?completed=false") == ["first"]

    second = alice.add_todo("second")
    assert _titles(two, there) == ["second", "first"]

    alice.patch(f"/api/v1/todos/{first['id']}", json={"title": "first, renamed", "completed": True})
    assert _titles(two, there) == ["second", "first, renamed"]
    assert _titles(two, there, "?completed=false") == ["second"]

    alice.delete(f"/api/v1/todos/{second['id']}")
    assert _titles(two, there) == ["first, renamed"]


def test_a_todo_moved_between_lists_leaves_one_page_and_joins_the_other(twin_clients):
    one, two = twin_clients
    alice = Account(one, "alice")
    other = alice.post("/api/v1/lists", json={"name": "Other"}).get_json()
    todo = alice.add_todo("wanderer")
    inbox_query, other_query = f"?list_id={alice.inbox_id}", f"?list_id={other['id']}"
    assert _titles(two, alice.headers, inbox_query) == ["wanderer"]
    assert _titles(two, alice.headers, other_query) == []

    alice.patch(f"/api/v1/todos/{todo['id']}", json={"list_id": other["id"]})

    assert _titles(two, alice.headers, inbox_query) == []
    assert _titles(two, alice.headers, other_query) == ["wanderer"]


def test_a_write_by_one_member_reaches_the_other_members_cached_page(twin_clients):
    one, two = twin_clients
    alice, bob = Account(one, "alice"), Account(one, "bob")
    shared = alice.post("/api/v1/lists", json={"name": "Shared"}).get_json()
    alice.post(f"/api/v1/lists/{shared['id']}/members", json={"username": "bob"})
    bob_there = {"Authorization": f"Bearer {bob.token}"}
    assert _titles(two, bob_there) == []

    alice.add_todo("from alice", list_id=shared["id"])

    assert _titles(two, bob_there) == ["from alice"]
