"""Keyset cursors and list_todos paging, called directly."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from todoscale.exceptions import BadRequestError
from todoscale.extensions import db
from todoscale.models import Todo, new_id
from todoscale.services import lists, todos
from todoscale.services.accounts import register_user
from todoscale.services.pagination import decode_cursor, encode_cursor


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_cursor_round_trips():
    when = datetime(2026, 11, 22, 8, 15, 0, 123456, tzinfo=UTC)

    assert decode_cursor(encode_cursor(when, "abc")) == (when, "abc")


def test_a_cursor_is_opaque_url_safe_text():
    cursor = encode_cursor(datetime(2026, 11, 22, tzinfo=UTC), "f" * 32)

    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "%%%",
        "é",
        _b64(b"not json"),
        _b64(b"[]"),
        _b64(b'["2026-11-22T08:15:00+00:00"]'),
        _b64(b'["2026-11-22T08:15:00+00:00", "a", "b"]'),
        _b64(b'{"a": 1, "b": 2}'),
        _b64(b'["2026-11-22T08:15:00", "abc"]'),
        _b64(b'["yesterday", "abc"]'),
        _b64(b'[20261122, "abc"]'),
        _b64(b'["2026-11-22T08:15:00+00:00", 7]'),
        _b64(b'["2026-11-22T08:15:00+00:00", "' + b"a" * 65 + b'"]'),
        _b64(b'["2026-11-22T08:15:00+00:00", "a\\u0000b"]'),
        "A" * 201,
    ],
)
def test_a_cursor_we_did_not_issue_is_a_bad_request(cursor):
    with pytest.raises(BadRequestError, match="cursor"):
        decode_cursor(cursor)


@pytest.fixture
def olive(ctx):
    return register_user("olive", "olive@example.com", "long enough pw")


def _add(actor, list_id: str, created_at: datetime, todo_id: str | None = None) -> str:
    """Insert a todo with a chosen creation time (ties and order are the point here)."""
    todo = Todo(
        id=todo_id or new_id(),
        list_id=list_id,
        creator_id=actor.id,
        title="t",
        created_at=created_at,
        updated_at=created_at,
    )
    db.session.add(todo)
    db.session.commit()
    return todo.id


def _all_pages(actor, **kwargs) -> list[str]:
    seen, cursor = [], None
    while True:
        page = todos.list_todos(actor, cursor=cursor, **kwargs)
        seen += [item.id for item in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 10])
def test_ties_in_created_at_are_broken_by_id_across_pages(olive, limit):
    inbox = lists.default_list_id(olive)
    moment = datetime(2026, 11, 22, 8, 15, tzinfo=UTC)
    ids = [_add(olive, inbox, moment, f"{n:032x}") for n in (5, 1, 4, 2, 3)]
    older = _add(olive, inbox, moment - timedelta(microseconds=1))
    newer = _add(olive, inbox, moment + timedelta(microseconds=1))

    seen = _all_pages(olive, limit=limit)

    assert seen == [newer, *sorted(ids, reverse=True), older]


@pytest.mark.parametrize("limit", [1, 2, 4, 100])
def test_pages_merge_every_visible_list_newest_first(olive, limit):
    other = register_user("mia", "mia@example.com", "long enough pw")
    inbox = lists.default_list_id(olive)
    own = lists.create_list(olive, "Own").todo_list.id
    shared = lists.create_list(other, "Shared").todo_list.id
    lists.share_list(other, shared, username="olive")
    hidden = lists.default_list_id(other)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    expected = []
    for n in range(9):
        list_id = (inbox, own, shared)[n % 3]
        expected.append(_add(olive, list_id, start + timedelta(seconds=n)))
        _add(other, hidden, start + timedelta(seconds=n, microseconds=1))

    assert _all_pages(olive, limit=limit) == list(reversed(expected))
    assert _all_pages(olive, limit=limit, list_id=own) == list(reversed(expected[1::3]))


def test_completed_filter_applies_on_every_page(olive):
    inbox = lists.default_list_id(olive)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [_add(olive, inbox, start + timedelta(seconds=n)) for n in range(7)]
    for todo_id in ids[::2]:
        todos.complete_todo(olive, todo_id)

    assert _all_pages(olive, limit=2, completed=True) == list(reversed(ids[::2]))
    assert _all_pages(olive, limit=2, completed=False) == list(reversed(ids[1::2]))


def test_the_last_full_page_has_no_next_cursor(olive):
    inbox = lists.default_list_id(olive)
    for n in range(3):
        _add(olive, inbox, datetime(2026, 1, 1, second=n, tzinfo=UTC))

    page = todos.list_todos(olive, limit=3)

    assert len(page.items) == 3
    assert page.next_cursor is None


def test_a_user_without_todos_gets_an_empty_page(olive):
    page = todos.list_todos(olive)

    assert list(page.items) == []
    assert page.next_cursor is None


def _plan(statement) -> str:
    """The database's plan for `statement`, index scans preferred (tiny test tables would
    otherwise be scanned whole on PostgreSQL, whatever the condition)."""
    connection = db.session.connection()
    compiled = statement.compile(dialect=connection.dialect)
    if connection.dialect.name == "sqlite":
        params = tuple(str(compiled.params[name]) for name in compiled.positiontup or [])
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, params)
        return "\n".join(str(row[-1]) for row in rows)
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    rows = connection.exec_driver_sql("EXPLAIN " + compiled.string, compiled.params)
    return "\n".join(str(row[0]) for row in rows)


def test_a_page_after_a_cursor_seeks_the_index_to_the_cursor(olive):
    # Page 500 must cost what page 1 costs: the cursor bounds the index range scan itself,
    # not a filter over every todo of the list before it (which made page 500 of the bench's
    # 10,000 todos about 3 times slower than page 1).
    inbox = lists.default_list_id(olive)
    moment = datetime(2026, 11, 22, 8, 15, tzinfo=UTC)
    statement = todos._page_query(1, False, True).params(
        list0=inbox, after_created=moment, after_id="f" * 32, limit=11
    )

    plan = _plan(statement)

    if db.session.get_bind().dialect.name == "sqlite":
        assert "USING INDEX ix_todos_list_created (list_id=? AND (created_at,id)<(?,?))" in plan
    else:
        index_cond = next(line for line in plan.splitlines() if "Index Cond" in line)
        assert "list_id" in index_cond and "created_at" in index_cond, plan
