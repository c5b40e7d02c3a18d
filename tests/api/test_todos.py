"""/api/v1/todos: creating, reading (ETag, 304), editing (If-Match, 412), deleting, paging."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, event, insert

from tests.conftest import assert_shape
from todoscale.api.schemas import TodoPage, TodoRead
from todoscale.cache import invalidate
from todoscale.extensions import db
from todoscale.models import Membership, TodoList, new_id
from todoscale.services.lists import member_scope

TODOS = "/api/v1/todos"
MISSING = "0" * 32


def _new_list(account, name="Groceries"):
    response = account.post("/api/v1/lists", json={"name": name})
    assert response.status_code == 201
    return response.get_json()["id"]


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _page(account, **query):
    response = account.get(TODOS, query_string=query)
    assert response.status_code == 200, response.get_json()
    assert_shape(TodoPage, response.get_json())
    for item in response.get_json()["items"]:
        assert_shape(TodoRead, item)
    return response


def test_create_answers_201_with_location_and_etag(alice):
    response = alice.post(TODOS, json={"title": "Buy milk"})

    assert response.status_code == 201
    todo = response.get_json()
    assert_shape(TodoRead, todo)
    assert response.headers["Location"] == todo["url"]
    assert response.headers["ETag"] == f'"{todo["id"]}.1"'
    assert todo["list_id"] == alice.inbox_id
    assert todo["title"] == "Buy milk"
    assert todo["notes"] == ""
    assert todo["completed"] is False
    assert todo["completed_at"] is None
    assert todo["due_at"] is None
    assert todo["version"] == 1
    assert todo["created_at"] == todo["updated_at"]


def test_create_into_a_named_list(alice):
    list_id = _new_list(alice)

    assert alice.add_todo(list_id=list_id)["list_id"] == list_id


def test_create_into_an_unknown_list_is_404(alice, row_counts):
    before = row_counts()

    response = alice.post(TODOS, json={"title": "x", "list_id": MISSING})

    assert response.status_code == 404
    assert row_counts() == before


def test_title_is_stored_trimmed_and_notes_as_given(alice):
    notes = "  first line\n\tsecond line  \n"

    todo = alice.add_todo("  Buy milk \n", notes=notes)

    assert todo["title"] == "Buy milk"
    assert todo["notes"] == notes
    stored = alice.get(todo["url"]).get_json()
    assert (stored["title"], stored["notes"]) == ("Buy milk", notes)


@pytest.mark.parametrize("title", ["", "   ", "\n", "x" * 501, " " + "x" * 501 + " "])
def test_invalid_title_is_422(alice, row_counts, title):
    before = row_counts()

    response = alice.post(TODOS, json={"title": title})

    assert response.status_code == 422
    assert "title" in response.get_json()["errors"]
    assert row_counts() == before


def test_title_of_500_characters_after_trimming_is_accepted(alice):
    assert alice.add_todo("  " + "x" * 500 + "  ")["title"] == "x" * 500


def test_due_at_is_stored_in_utc(alice):
    todo = alice.add_todo(due_at="2026-11-22T10:15:00+02:00")

    assert datetime.fromisoformat(todo["due_at"]) == datetime(2026, 11, 22, 8, 15, tzinfo=UTC)
    assert todo["due_at"].endswith("Z")


def test_get_answers_the_todo_with_its_etag(alice):
    todo = alice.add_todo()

    response = alice.get(todo["url"])

    assert response.status_code == 200
    assert response.get_json() == todo
    assert response.headers["ETag"] == f'"{todo["id"]}.1"'


def test_matching_if_none_match_is_304_without_a_body(alice):
    todo = alice.add_todo()
    etag = alice.get(todo["url"]).headers["ETag"]

    response = alice.get(todo["url"], headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert response.get_data() == b""
    assert response.headers["ETag"] == etag


def test_stale_if_none_match_answers_the_new_version(alice):
    todo = alice.add_todo()
    etag = alice.get(todo["url"]).headers["ETag"]
    alice.patch(todo["url"], json={"title": "changed"})

    response = alice.get(todo["url"], headers={"If-None-Match": etag})

    assert response.status_code == 200
    assert response.get_json()["title"] == "changed"
    assert response.headers["ETag"] != etag


def test_get_unknown_todo_is_404(alice):
    response = alice.get(f"{TODOS}/{MISSING}")

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_patch_changes_fields_and_the_etag(alice):
    todo = alice.add_todo()

    response = alice.patch(todo["url"], json={"title": " Buy oat milk ", "notes": " n "})

    assert response.status_code == 200
    changed = response.get_json()
    assert_shape(TodoRead, changed)
    assert changed["title"] == "Buy oat milk"
    assert changed["notes"] == " n "
    assert changed["version"] == 2
    assert response.headers["ETag"] == f'"{todo["id"]}.2"'
    assert _when(changed["updated_at"]) > _when(todo["updated_at"])
    assert changed["created_at"] == todo["created_at"]
    assert alice.get(todo["url"]).get_json() == changed


def test_patch_without_a_real_change_keeps_the_version(alice):
    todo = alice.add_todo("same")

    response = alice.patch(todo["url"], json={"title": "same"})

    assert response.status_code == 200
    assert response.get_json() == todo


def test_completing_sets_completed_at_and_reopening_clears_it(alice):
    todo = alice.add_todo()

    done = alice.patch(todo["url"], json={"completed": True}).get_json()
    assert done["completed"] is True
    assert done["completed_at"] is not None
    assert _when(done["completed_at"]) >= _when(todo["created_at"])

    again = alice.patch(todo["url"], json={"completed": True}).get_json()
    assert again["completed_at"] == done["completed_at"]

    reopened = alice.patch(todo["url"], json={"completed": False}).get_json()
    assert reopened["completed"] is False
    assert reopened["completed_at"] is None


def test_due_at_is_set_and_cleared(alice):
    todo = alice.add_todo()

    due = alice.patch(todo["url"], json={"due_at": "2026-12-01T09:00:00Z"}).get_json()
    assert datetime.fromisoformat(due["due_at"]) == datetime(2026, 12, 1, 9, tzinfo=UTC)

    cleared = alice.patch(todo["url"], json={"due_at": None}).get_json()
    assert cleared["due_at"] is None


def test_patch_moves_a_todo_to_another_visible_list(alice):
    list_id = _new_list(alice)
    todo = alice.add_todo()

    moved = alice.patch(todo["url"], json={"list_id": list_id}).get_json()

    assert moved["list_id"] == list_id
    assert _page(alice, list_id=list_id).get_json()["items"] == [moved]
    assert _page(alice, list_id=alice.inbox_id).get_json()["items"] == []


def test_patch_with_the_current_if_match_succeeds(alice):
    todo = alice.add_todo()
    etag = alice.get(todo["url"]).headers["ETag"]

    response = alice.patch(todo["url"], json={"title": "new"}, headers={"If-Match": etag})

    assert response.status_code == 200
    assert response.headers["ETag"] != etag


@pytest.mark.parametrize("if_match", ["*", 'W/"{id}.1"', '"other", "{id}.1"'])
def test_if_match_accepts_star_weak_and_lists(alice, if_match):
    todo = alice.add_todo()

    response = alice.patch(
        todo["url"], json={"title": "new"}, headers={"If-Match": if_match.format(id=todo["id"])}
    )

    assert response.status_code == 200


@pytest.mark.parametrize("if_match", ['"{id}.0"', '"{id}.2"', '"nonsense"', "garbage"])
def test_patch_with_a_stale_if_match_is_412_and_changes_nothing(alice, if_match):
    todo = alice.add_todo()

    response = alice.patch(
        todo["url"], json={"title": "new"}, headers={"If-Match": if_match.format(id=todo["id"])}
    )

    assert response.status_code == 412
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 412
    assert alice.get(todo["url"]).get_json() == todo


def test_patch_invalid_title_is_422_and_changes_nothing(alice):
    todo = alice.add_todo()

    response = alice.patch(todo["url"], json={"notes": "kept?", "title": "  "})

    assert response.status_code == 422
    assert alice.get(todo["url"]).get_json() == todo


def test_patch_unknown_todo_is_404(alice):
    assert alice.patch(f"{TODOS}/{MISSING}", json={"title": "x"}).status_code == 404


def test_patch_into_an_unknown_list_is_404_and_changes_nothing(alice):
    todo = alice.add_todo()

    response = alice.patch(todo["url"], json={"title": "moved", "list_id": MISSING})

    assert response.status_code == 404
    assert alice.get(todo["url"]).get_json() == todo


def test_delete_answers_204_and_the_todo_is_gone(alice, row_counts):
    todo = alice.add_todo()
    before = row_counts()

    response = alice.delete(todo["url"])

    assert response.status_code == 204
    assert response.get_data() == b""
    assert alice.get(todo["url"]).status_code == 404
    assert alice.delete(todo["url"]).status_code == 404
    assert row_counts()["todos"] == before["todos"] - 1


def test_every_todo_route_needs_a_token(client, alice):
    todo = alice.add_todo()
    for method, url in [
        ("get", TODOS),
        ("post", TODOS),
        ("get", todo["url"]),
        ("patch", todo["url"]),
        ("delete", todo["url"]),
    ]:
        response = getattr(client, method)(url, json={"title": "x"})
        assert response.status_code == 401, (method, url)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert alice.get(todo["url"]).get_json() == todo


def test_listing_is_newest_first_ten_by_default(alice):
    created = [alice.add_todo(f"todo {n}") for n in range(12)]

    body = _page(alice).get_json()

    assert [item["id"] for item in body["items"]] == [t["id"] for t in reversed(created)][:10]
    assert body["next_cursor"] is not None


def test_pages_follow_the_cursor_and_the_link_header_to_the_end(alice):
    created = [alice.add_todo(f"todo {n}") for n in range(7)]
    seen, cursor, pages = [], None, 0

    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = _page(alice, **query)
        body = response.get_json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            assert "Link" not in response.headers
            break
        link = response.headers["Link"]
        assert link.endswith('>; rel="next"')
        via_link = alice.get(link[1 : link.index(">")])
        assert via_link.get_json() == _page(alice, limit=3, cursor=cursor).get_json()

    assert seen == [t["id"] for t in reversed(created)]
    assert pages == 3


def test_link_header_keeps_the_other_query_parameters(alice):
    list_id = _new_list(alice)
    for n in range(3):
        alice.add_todo(f"todo {n}", list_id=list_id)
    alice.add_todo("inbox")

    response = _page(alice, list_id=list_id, limit=2)

    link = response.headers["Link"]
    assert f"list_id={list_id}" in link
    assert "limit=2" in link
    rest = alice.get(link[1 : link.index(">")]).get_json()
    assert len(rest["items"]) == 1
    assert rest["items"][0]["list_id"] == list_id
    assert rest["next_cursor"] is None


def test_a_full_last_page_has_no_next_cursor(alice):
    for n in range(4):
        alice.add_todo(f"todo {n}")

    response = _page(alice, limit=4)

    assert len(response.get_json()["items"]) == 4
    assert response.get_json()["next_cursor"] is None
    assert "Link" not in response.headers


@pytest.mark.parametrize("limit", [1, 100])
def test_limit_bounds_are_accepted(alice, limit):
    alice.add_todo("a")
    alice.add_todo("b")

    assert len(_page(alice, limit=limit).get_json()["items"]) == min(limit, 2)


def test_listing_without_list_id_covers_every_visible_list(alice, bob):
    shared = _new_list(bob, "Shared")
    bob.post(f"/api/v1/lists/{shared}/members", json={"username": "alice"})
    mine = alice.add_todo("mine")
    own_list = alice.add_todo("own list", list_id=_new_list(alice))
    theirs = bob.add_todo("theirs", list_id=shared)
    bob.add_todo("bob's inbox")

    items = _page(alice, limit=100).get_json()["items"]

    assert [item["id"] for item in items] == [theirs["id"], own_list["id"], mine["id"]]


def test_listing_across_more_lists_than_sqlite_compounds_works(app, alice):
    """600 lists: past SQLite's 500-part compound SELECT (a 500 before), on both engines."""
    now = datetime.now(UTC)
    lists = [{"id": new_id(), "name": f"L{n}", "created_at": now} for n in range(600)]
    user_id = alice.user["id"]
    with app.app_context():
        db.session.execute(
            insert(TodoList), [{**row, "owner_id": user_id, "is_default": False} for row in lists]
        )
        db.session.execute(
            insert(Membership),
            [{"list_id": row["id"], "user_id": user_id, "role": "owner"} for row in lists],
        )
        db.session.commit()
        invalidate(member_scope(user_id))
    # Two todos in each of eight lists spread over the 600, created in an interleaved order.
    chosen = [lists[n]["id"] for n in (0, 99, 199, 200, 350, 401, 598, 599)]
    created = [alice.add_todo(f"t{n}", list_id=chosen[n % 8]) for n in range(16)]
    newest_first = [todo["id"] for todo in reversed(created)]

    assert [t["id"] for t in _page(alice, limit=100).get_json()["items"]] == newest_first
    paged, cursor = [], None
    while True:
        body = _page(alice, limit=3, **({"cursor": cursor} if cursor else {})).get_json()
        paged += [t["id"] for t in body["items"]]
        if not (cursor := body["next_cursor"]):
            break
    assert paged == newest_first
    completed = _page(alice, limit=5, completed="false").get_json()["items"]
    assert [t["id"] for t in completed] == newest_first[:5]


def test_creating_a_todo_in_a_list_deleted_meanwhile_is_404(app, alice, row_counts):
    """The list is deleted after the visibility check, before the insert (an IntegrityError
    and a 500 before); moving a todo into such a list likewise."""
    doomed, other = _new_list(alice, "Doomed"), _new_list(alice, "Other")
    todo = alice.add_todo("Stay", list_id=other)
    with app.app_context():
        engine = db.engine

    pending: list[str] = []

    def delete_the_list_first(conn, cursor, statement, parameters, context, executemany):
        if pending and statement.startswith(("INSERT INTO todos", "UPDATE todos")):
            list_id = pending.pop()
            with engine.begin() as other:  # another request deletes the list, and commits first
                other.execute(delete(Membership).where(Membership.list_id == list_id))
                other.execute(delete(TodoList).where(TodoList.id == list_id))

    before = row_counts()
    event.listen(engine, "before_cursor_execute", delete_the_list_first)
    try:
        pending.append(doomed)
        response = alice.post(TODOS, json={"title": "Too late", "list_id": doomed})
        assert response.status_code == 404, response.get_json()
        assert response.get_json()["detail"] == "No such list: it was deleted."
        assert row_counts()["todos"] == before["todos"]

        pending.append(doomed := _new_list(alice, "Doomed again"))
        moved = alice.patch(f"{TODOS}/{todo['id']}", json={"list_id": doomed})
        assert moved.status_code == 404, moved.get_json()
    finally:
        event.remove(engine, "before_cursor_execute", delete_the_list_first)
    assert alice.get(f"{TODOS}/{todo['id']}").get_json() == todo


def test_listing_one_list(alice):
    list_id = _new_list(alice)
    inside = alice.add_todo("inside", list_id=list_id)
    alice.add_todo("outside")

    assert _page(alice, list_id=list_id).get_json()["items"] == [inside]


def test_listing_an_unknown_list_is_404(alice):
    assert alice.get(TODOS, query_string={"list_id": MISSING}).status_code == 404


def test_listing_filters_on_completed(alice):
    done = alice.add_todo("done")
    open_ = alice.add_todo("open")
    done = alice.patch(done["url"], json={"completed": True}).get_json()

    assert _page(alice, completed="true").get_json()["items"] == [done]
    assert _page(alice, completed="false").get_json()["items"] == [open_]


def test_completed_filter_pages_with_a_cursor(alice):
    todos = [alice.add_todo(f"todo {n}") for n in range(6)]
    for todo in todos[::2]:
        alice.patch(todo["url"], json={"completed": True})

    first = _page(alice, completed="true", limit=2).get_json()
    rest = _page(alice, completed="true", limit=2, cursor=first["next_cursor"]).get_json()

    assert [t["id"] for t in first["items"] + rest["items"]] == [
        todos[4]["id"],
        todos[2]["id"],
        todos[0]["id"],
    ]
    assert rest["next_cursor"] is None


def test_empty_listing(alice):
    body = _page(alice).get_json()

    assert body == {"items": [], "next_cursor": None}


def test_sql_in_input_is_data_not_a_statement(alice, bob):
    # Bound parameters everywhere: what looks like SQL is stored and matched as text.
    title = "x'); DELETE FROM todos; --"
    created = alice.post(TODOS, json={"title": title, "notes": "' OR '1'='1"})
    assert created.status_code == 201
    assert alice.get(f"{TODOS}/{created.get_json()['id']}").get_json()["title"] == title
    assert alice.get(TODOS, query_string={"list_id": "' OR '1'='1"}).status_code == 404
    assert bob.get(f"{TODOS}/' OR '1'='1").status_code == 404
    assert [item["title"] for item in _page(alice).get_json()["items"]] == [title]


def test_q_searches_the_callers_todos_newest_first_with_a_link_to_the_next_page(alice, bob):
    for n in range(3):
        alice.add_todo(f"Water the ficus {n}", notes="every week")
    alice.add_todo("Something else", notes="the ficus again")
    bob.add_todo("Bob's ficus")
    response = alice.get("/api/v1/todos?q=Ficus&limit=2")
    assert response.status_code == 200
    body = response.get_json()
    assert [item["title"] for item in body["items"]] == ["Something else", "Water the ficus 2"]
    assert "q=Ficus" in response.headers["Link"] and body["next_cursor"]
    rest = alice.get(f"/api/v1/todos?q=Ficus&limit=2&cursor={body['next_cursor']}").get_json()
    assert [item["title"] for item in rest["items"]] == ["Water the ficus 1", "Water the ficus 0"]
    assert rest["next_cursor"] is None
    assert alice.get("/api/v1/todos?q=ficus week").get_json()["items"][0]["notes"] == "every week"


def test_q_combines_with_list_id_and_completed(alice):
    done = alice.add_todo("Pay the rent")
    alice.patch(f"/api/v1/todos/{done['id']}", json={"completed": True})
    alice.add_todo("Pay the bills")
    items = alice.get("/api/v1/todos?q=pay&completed=true").get_json()["items"]
    assert [item["title"] for item in items] == ["Pay the rent"]
    assert alice.get("/api/v1/todos?q=pay&list_id=nope").status_code == 404


@pytest.mark.parametrize("query", ["%21%21", "x" * 201, "ok&cursor=bad"])
def test_q_without_a_word_too_long_or_with_a_bad_cursor_is_400(alice, query):
    response = alice.get(f"/api/v1/todos?q={query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_an_empty_q_is_no_search(alice):
    alice.add_todo("Anything")
    assert len(alice.get("/api/v1/todos?q=").get_json()["items"]) == 1


def test_the_openapi_document_states_the_constraints_of_q(client):
    parameters = client.get("/api/v1/openapi.json").get_json()["paths"]["/todos"]["get"][
        "parameters"
    ]
    q = next(parameter for parameter in parameters if parameter["name"] == "q")
    # No minLength: an empty q is answered 200 as no search (schemathesis flagged the 1).
    assert q["schema"] == {"type": "string", "maxLength": 200}


def test_creating_a_todo_in_a_named_list_reads_nothing_the_cache_holds(app, alice):
    """With the reader's lists and token cached, a create is its INSERT alone: the list's
    visibility comes from the cached list ids, and the answer from the values just written
    (no SELECT to reload them after the commit)."""
    list_id = _new_list(alice)
    alice.add_todo("warm the caches", list_id=list_id)
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        created = alice.post(TODOS, json={"title": "Counted", "list_id": list_id})
    finally:
        event.remove(engine, "before_cursor_execute", note)

    assert created.status_code == 201
    assert created.get_json()["title"] == "Counted"
    assert [s.split()[0] for s in statements] == ["INSERT"], statements
