"""Cross-user isolation: a second user gets 404 on every route for every object of the first."""

from __future__ import annotations

import pytest

LISTS = "/api/v1/lists"
TODOS = "/api/v1/todos"


@pytest.fixture
def alices(alice, bob):
    """Alice's objects: her Inbox, a list of her own with a todo, a todo in her Inbox."""
    own = alice.post(LISTS, json={"name": "Private"}).get_json()
    return {
        "inbox": alice.inbox_id,
        "list": own["id"],
        "todo": alice.add_todo("secret", list_id=own["id"])["id"],
        "inbox_todo": alice.add_todo("inbox secret")["id"],
        "user": alice.user["id"],
    }


def _routes(objects, bob):
    """Every route, aimed at each of alice's objects, with a body that would otherwise work."""
    routes = []
    for key in ("inbox", "list"):
        url = f"{LISTS}/{objects[key]}"
        routes += [
            ("get", url, None),
            ("patch", url, {"name": "Taken over"}),
            ("delete", url, None),
            ("post", f"{url}/members", {"username": "bob"}),
            ("delete", f"{url}/members/alice", None),
            ("delete", f"{url}/members/bob", None),
            ("post", TODOS, {"title": "planted", "list_id": objects[key]}),
            ("get", f"{TODOS}?list_id={objects[key]}", None),
            ("patch", f"{TODOS}/{bob.add_todo('mine')['id']}", {"list_id": objects[key]}),
        ]
    for key in ("todo", "inbox_todo"):
        url = f"{TODOS}/{objects[key]}"
        routes += [
            ("get", url, None),
            ("patch", url, {"title": "Taken over", "completed": True}),
            ("patch", url, {"list_id": bob.inbox_id}),
            ("delete", url, None),
        ]
    routes.append(("get", f"/api/v1/users/{objects['user']}", None))
    return routes


def test_second_user_gets_404_on_every_route_for_the_first_users_objects(
    alice, bob, alices, row_counts
):
    routes = _routes(alices, bob)
    before = row_counts()
    alice_view = [alice.get(f"{LISTS}/{alices[k]}").get_json() for k in ("inbox", "list")]
    alice_todos = alice.get(TODOS, query_string={"limit": 100}).get_json()

    for method, url, body in routes:
        kwargs = {"json": body} if body is not None else {}
        response = getattr(bob, method)(url, **kwargs)
        assert response.status_code == 404, (method, url, response.status_code)
        assert response.mimetype == "application/problem+json"

    assert row_counts() == before
    assert [alice.get(f"{LISTS}/{alices[k]}").get_json() for k in ("inbox", "list")] == alice_view
    assert alice.get(TODOS, query_string={"limit": 100}).get_json() == alice_todos


def test_not_visible_and_not_existing_look_the_same(bob, alices):
    hidden = bob.get(f"{TODOS}/{alices['todo']}")
    missing = bob.get(f"{TODOS}/{'f' * 32}")

    assert hidden.status_code == missing.status_code == 404
    assert hidden.get_json() == missing.get_json()
    hidden = bob.get(f"{LISTS}/{alices['list']}")
    missing = bob.get(f"{LISTS}/{'f' * 32}")
    assert hidden.get_json() == missing.get_json()


def test_listings_show_nothing_of_the_other_user(alice, bob, alices):
    mine = bob.add_todo("bob's")

    lists = bob.get(LISTS).get_json()["items"]
    todos = bob.get(TODOS, query_string={"limit": 100}).get_json()["items"]

    assert [item["id"] for item in lists] == [bob.inbox_id]
    assert [item["id"] for item in todos] == [mine["id"]]
    assert alice.get(TODOS, query_string={"limit": 100}).status_code == 200
    assert mine["id"] not in {
        item["id"] for item in alice.get(TODOS, query_string={"limit": 100}).get_json()["items"]
    }


def test_a_removed_member_loses_every_route_at_once(alice, bob, alices):
    alice.post(f"{LISTS}/{alices['list']}/members", json={"username": "bob"})
    assert bob.get(f"{TODOS}/{alices['todo']}").status_code == 200

    assert alice.delete(f"{LISTS}/{alices['list']}/members/bob").status_code == 204

    for method, url, body in _routes(alices, bob):
        if alices["list"] not in url and alices["todo"] not in url:
            continue
        kwargs = {"json": body} if body is not None else {}
        response = getattr(bob, method)(url, **kwargs)
        assert response.status_code == 404, (method, url, response.status_code)


def test_sharing_one_list_reveals_nothing_else(alice, bob, alices):
    alice.post(f"{LISTS}/{alices['list']}/members", json={"username": "bob"})

    assert bob.get(f"{TODOS}/{alices['todo']}").status_code == 200
    assert bob.get(f"{TODOS}/{alices['inbox_todo']}").status_code == 404
    assert bob.get(f"{LISTS}/{alices['inbox']}").status_code == 404
    items = bob.get(TODOS, query_string={"limit": 100}).get_json()["items"]
    assert [item["id"] for item in items] == [alices["todo"]]


@pytest.mark.parametrize("header", ["If-Match", "If-None-Match"])
def test_conditional_requests_on_anothers_todo_are_404_not_412_or_304(alice, bob, alices, header):
    url = f"{TODOS}/{alices['todo']}"
    etag = alice.get(url).headers["ETag"]

    for tag in (etag, '"stale"', "*"):
        for method in ("get", "patch"):
            response = getattr(bob, method)(url, json={"title": "x"}, headers={header: tag})
            assert response.status_code == 404, (method, tag, response.status_code)
