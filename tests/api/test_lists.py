"""/api/v1/lists and /api/v1/lists/{id}/members."""

from __future__ import annotations

import pytest

from tests.conftest import assert_shape
from todoscale.api.schemas import ListRead

LISTS = "/api/v1/lists"
MISSING = "0" * 32


def _create(account, name="Groceries"):
    response = account.post(LISTS, json={"name": name})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _share(owner, list_id, username):
    response = owner.post(f"{LISTS}/{list_id}/members", json={"username": username})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_index_shows_owned_and_shared_lists_default_first(alice, bob):
    groceries = _create(alice, "Groceries")
    work = _create(bob, "Work")
    _share(bob, work["id"], "alice")

    response = alice.get(LISTS)

    assert response.status_code == 200
    items = response.get_json()["items"]
    for item in items:
        assert_shape(ListRead, item)
    assert [item["id"] for item in items] == [alice.inbox_id, groceries["id"], work["id"]]
    assert items[2]["owner"] == "bob"
    assert items[2]["members"] == ["bob", "alice"]


def test_index_without_a_token_is_401(client):
    response = client.get(LISTS)

    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_create_answers_201_with_the_list_and_location(alice):
    response = alice.post(LISTS, json={"name": "Groceries"})

    assert response.status_code == 201
    created = response.get_json()
    assert_shape(ListRead, created)
    assert response.headers["Location"] == created["url"]
    assert created["name"] == "Groceries"
    assert created["owner"] == "alice"
    assert created["members"] == ["alice"]
    assert created["is_default"] is False
    assert created["todo_count"] == 0
    assert alice.get(created["url"]).get_json() == created


def test_list_name_is_stored_trimmed(alice):
    created = _create(alice, "  \tGroceries \n")

    assert created["name"] == "Groceries"
    assert alice.get(created["url"]).get_json()["name"] == "Groceries"


@pytest.mark.parametrize("name", ["", "   ", "\n\t", "x" * 201])
def test_invalid_list_name_is_422(alice, row_counts, name):
    before = row_counts()

    response = alice.post(LISTS, json={"name": name})

    assert response.status_code == 422
    assert "name" in response.get_json()["errors"]
    assert row_counts() == before


def test_list_name_of_200_characters_is_accepted(alice):
    assert _create(alice, "x" * 200)["name"] == "x" * 200


def test_get_answers_the_list(alice):
    created = _create(alice)

    response = alice.get(f"{LISTS}/{created['id']}")

    assert response.status_code == 200
    assert response.get_json() == created


def test_get_unknown_list_is_404(alice):
    response = alice.get(f"{LISTS}/{MISSING}")

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_todo_count_counts_the_lists_todos(alice):
    created = _create(alice)
    alice.add_todo("one", list_id=created["id"])
    alice.add_todo("two", list_id=created["id"])
    alice.add_todo("elsewhere")

    assert alice.get(created["url"]).get_json()["todo_count"] == 2


def test_owner_renames_a_list(alice):
    created = _create(alice)

    response = alice.patch(created["url"], json={"name": "  Shopping "})

    assert response.status_code == 200
    assert_shape(ListRead, response.get_json())
    assert response.get_json()["name"] == "Shopping"
    assert alice.get(created["url"]).get_json()["name"] == "Shopping"


def test_owner_may_rename_the_default_list(alice):
    response = alice.patch(f"{LISTS}/{alice.inbox_id}", json={"name": "Later"})

    assert response.status_code == 200
    assert response.get_json()["is_default"] is True


def test_rename_to_an_empty_name_is_422(alice):
    created = _create(alice)

    response = alice.patch(created["url"], json={"name": " "})

    assert response.status_code == 422
    assert alice.get(created["url"]).get_json()["name"] == "Groceries"


def test_rename_unknown_list_is_404(alice):
    assert alice.patch(f"{LISTS}/{MISSING}", json={"name": "x"}).status_code == 404


def test_member_cannot_rename_list(alice, bob):
    created = _create(alice)
    _share(alice, created["id"], "bob")

    response = bob.patch(created["url"], json={"name": "Mine now"})

    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert alice.get(created["url"]).get_json()["name"] == "Groceries"


def test_owner_deletes_a_list_with_its_todos(alice, row_counts):
    created = _create(alice)
    todo = alice.add_todo("in the list", list_id=created["id"])
    kept = alice.add_todo("in the inbox")
    before = row_counts()

    response = alice.delete(created["url"])

    assert response.status_code == 204
    assert response.get_data() == b""
    assert alice.get(created["url"]).status_code == 404
    assert alice.get(todo["url"]).status_code == 404
    assert alice.get(kept["url"]).status_code == 200
    after = row_counts()
    assert after["lists"] == before["lists"] - 1
    assert after["todos"] == before["todos"] - 1
    assert after["memberships"] == before["memberships"] - 1


def test_deleting_the_default_list_is_409(alice, row_counts):
    alice.add_todo()
    before = row_counts()

    response = alice.delete(f"{LISTS}/{alice.inbox_id}")

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert row_counts() == before


def test_member_cannot_delete_list(alice, bob, row_counts):
    created = _create(alice)
    _share(alice, created["id"], "bob")
    before = row_counts()

    assert bob.delete(created["url"]).status_code == 403
    assert row_counts() == before


def test_delete_unknown_list_is_404(alice):
    assert alice.delete(f"{LISTS}/{MISSING}").status_code == 404


def test_owner_shares_a_list(alice, bob):
    created = _create(alice)

    response = alice.post(f"{created['url']}/members", json={"username": "bob"})

    assert response.status_code == 201
    shared = response.get_json()
    assert_shape(ListRead, shared)
    assert shared["members"] == ["alice", "bob"]
    assert response.headers["Location"] == created["url"]
    assert [item["id"] for item in bob.get(LISTS).get_json()["items"]] == [
        bob.inbox_id,
        created["id"],
    ]


def test_sharing_matches_the_username_regardless_of_case(alice, bob):
    created = _create(alice)

    assert _share(alice, created["id"], "BOB")["members"] == ["alice", "bob"]


def test_members_read_and_write_the_lists_todos(alice, bob):
    created = _create(alice)
    _share(alice, created["id"], "bob")
    todo = alice.add_todo("from alice", list_id=created["id"])

    assert bob.get(todo["url"]).status_code == 200
    assert bob.patch(todo["url"], json={"completed": True}).status_code == 200
    from_bob = bob.add_todo("from bob", list_id=created["id"])
    assert alice.get(from_bob["url"]).get_json()["title"] == "from bob"
    listing = bob.get("/api/v1/todos", query_string={"list_id": created["id"]}).get_json()
    assert {item["id"] for item in listing["items"]} == {todo["id"], from_bob["id"]}
    assert bob.delete(todo["url"]).status_code == 204


def test_sharing_twice_is_409(alice, bob, row_counts):
    created = _create(alice)
    _share(alice, created["id"], "bob")
    before = row_counts()

    response = alice.post(f"{created['url']}/members", json={"username": "bob"})

    assert response.status_code == 409
    assert row_counts() == before


def test_sharing_with_the_owner_is_409(alice):
    created = _create(alice)

    assert alice.post(f"{created['url']}/members", json={"username": "alice"}).status_code == 409


def test_sharing_with_an_unknown_user_is_404(alice, row_counts):
    created = _create(alice)
    before = row_counts()

    response = alice.post(f"{created['url']}/members", json={"username": "nobody"})

    assert response.status_code == 404
    assert row_counts() == before


def test_sharing_an_unknown_list_is_404(alice, bob):
    response = alice.post(f"{LISTS}/{MISSING}/members", json={"username": "bob"})

    assert response.status_code == 404


def test_member_cannot_share_list(alice, bob, make_account, row_counts):
    make_account("carol")
    created = _create(alice)
    _share(alice, created["id"], "bob")
    before = row_counts()

    response = bob.post(f"{created['url']}/members", json={"username": "carol"})

    assert response.status_code == 403
    assert row_counts() == before


def test_owner_removes_a_member(alice, bob):
    created = _create(alice)
    todo = alice.add_todo(list_id=created["id"])
    _share(alice, created["id"], "bob")

    response = alice.delete(f"{created['url']}/members/bob")

    assert response.status_code == 204
    assert alice.get(created["url"]).get_json()["members"] == ["alice"]
    assert bob.get(created["url"]).status_code == 404
    assert bob.get(todo["url"]).status_code == 404


def test_member_removes_themself(alice, bob):
    created = _create(alice)
    _share(alice, created["id"], "bob")

    assert bob.delete(f"{created['url']}/members/bob").status_code == 204
    assert bob.get(created["url"]).status_code == 404


def test_member_cannot_remove_another_member(alice, bob, make_account):
    carol = make_account("carol")
    created = _create(alice)
    _share(alice, created["id"], "bob")
    _share(alice, created["id"], "carol")

    assert bob.delete(f"{created['url']}/members/carol").status_code == 403
    assert bob.delete(f"{created['url']}/members/alice").status_code == 403
    assert carol.get(created["url"]).status_code == 200


def test_removing_a_non_member_is_404(alice, bob):
    created = _create(alice)

    assert alice.delete(f"{created['url']}/members/bob").status_code == 404
    assert alice.delete(f"{created['url']}/members/nobody").status_code == 404


def test_removing_from_an_unknown_list_is_404(alice, bob):
    assert alice.delete(f"{LISTS}/{MISSING}/members/bob").status_code == 404


def test_owner_cannot_leave_their_own_list(alice):
    created = _create(alice)

    response = alice.delete(f"{created['url']}/members/alice")

    assert response.status_code == 409
    assert alice.get(created["url"]).get_json()["members"] == ["alice"]
