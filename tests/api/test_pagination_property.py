"""Keyset pages are stable: todos inserted while a client pages never make it repeat or skip."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TODOS = "/api/v1/todos"


def _read_all_pages(account, list_id, limit, inserts, insert_into):
    """Page to the end, inserting `inserts[n]` todos after page n; return the ids seen."""
    seen, cursor, page = [], None, 0
    while True:
        query = {"limit": limit}
        if list_id:
            query["list_id"] = list_id
        if cursor:
            query["cursor"] = cursor
        response = account.get(TODOS, query_string=query)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert len(body["items"]) <= limit
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
        for n in range(inserts[page] if page < len(inserts) else 0):
            account.add_todo(f"inserted {page}.{n}", list_id=insert_into[n % len(insert_into)])
        page += 1


# Each example registers its own user, so examples share the test's tables without
# seeing each other's rows; the tables are emptied once the test ends.
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    lists=st.integers(min_value=1, max_value=3),
    existing=st.integers(min_value=0, max_value=12),
    limit=st.integers(min_value=1, max_value=5),
    inserts=st.lists(st.integers(min_value=0, max_value=3), max_size=6),
    one_list=st.booleans(),
)
def test_paging_while_inserting_never_repeats_or_skips_an_item(
    make_account, lists, existing, limit, inserts, one_list
):
    account = make_account()
    list_ids = [account.inbox_id] + [
        account.post("/api/v1/lists", json={"name": f"List {n}"}).get_json()["id"]
        for n in range(1, lists)
    ]
    created = [account.add_todo(f"todo {n}", list_id=list_ids[n % lists]) for n in range(existing)]
    paged_list = list_ids[-1] if one_list else None
    expected = [
        todo["id"]
        for todo in reversed(created)
        if paged_list is None or todo["list_id"] == paged_list
    ]

    seen = _read_all_pages(account, paged_list, limit, inserts, insert_into=list_ids)

    assert len(seen) == len(set(seen)), "an item was repeated"
    assert [item for item in seen if item in set(expected)] == expected
