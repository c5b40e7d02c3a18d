"""Search: the todos `actor` can see whose title (or notes) hold every word of a query.

Each engine answers from its own full-text index (migration 0007): FTS5 on SQLite, a
GIN index on a `tsvector` on PostgreSQL; any other engine scans with LIKE. A query's words
are letters and digits only, each matched as a whole word in any case, all of them
required. (Whole words, not prefixes: PostgreSQL estimates a prefix match blindly and
would then walk a list's whole date index instead of the full-text one.) Results come
newest first, keyset-paged on (created_at, id) like a list's todos. With encrypted
notes (`ENCRYPTION_KEYS`) the index holds titles only, and so does search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, literal_column, or_, select, table, text
from sqlalchemy.sql.elements import ColumnElement

from todoscale.exceptions import BadRequestError
from todoscale.extensions import db
from todoscale.models import Todo, TodoList, TodoRow, User
from todoscale.models.todos import READ_COLUMNS, notes_searchable
from todoscale.services.lists import visible_list_id, visible_list_ids
from todoscale.services.pagination import decode_cursor, encode_cursor

# The longest query accepted, and how many of its words are used.
QUERY_MAX = 200
TERMS_MAX = 8

_WORD = re.compile(r"[^\W_]+")
_TODOS = Todo.__table__
_FTS = table("todos_fts")
# The indexed expression of ix_todos_search, exactly as the migration wrote it: PostgreSQL
# uses an expression index only for a query naming the same expression.
_PG_DOCUMENT: ColumnElement[Any] = literal_column(
    "to_tsvector('simple'::regconfig, todos.title || ' ' || "
    "CASE WHEN todos.notes_searchable THEN todos.notes ELSE '' END)"
)


@dataclass(frozen=True)
class Results:
    """One page of matches, newest first, with the cursors of the pages after and before it.

    `terms` are the words searched for (to highlight them); `lists` the lists the page's
    todos are in, by id; `notes_searched` is false when notes are encrypted.
    """

    items: list[TodoRow]
    next_cursor: str | None
    newer_cursor: str | None
    terms: list[str]
    lists: dict[str, TodoList]
    notes_searched: bool


def notes_searched() -> bool:
    """Whether search covers notes as well as titles (not when notes are encrypted)."""
    return notes_searchable()


def search_terms(query: str) -> list[str]:
    """The distinct words of `query`, lowercased; BadRequestError when there are none."""
    if len(query) > QUERY_MAX or "\x00" in query:
        raise BadRequestError(f"The search query must be 1-{QUERY_MAX} characters, without NUL.")
    terms = list(dict.fromkeys(_WORD.findall(query.lower())))[:TERMS_MAX]
    if not terms:
        raise BadRequestError("The search query must contain at least one letter or digit.")
    return terms


def _matching(terms: list[str], dialect: str) -> Select[Any]:
    """The todos matching every term (the values bound in the statement)."""
    columns = READ_COLUMNS
    if dialect == "sqlite":
        # Quoted: the user's words are FTS5 strings, never its query syntax.
        match = " ".join(f'"{term}"' for term in terms)
        rowid: ColumnElement[Any] = literal_column("todos.rowid")
        joined = _TODOS.join(_FTS, literal_column("todos_fts.rowid") == rowid)
        condition = literal_column("todos_fts").op("MATCH")(bindparam("match", match))
        return select(*columns).select_from(joined).where(condition)
    if dialect == "postgresql":
        tsquery = " & ".join(f"'{term}'" for term in terms)
        config: ColumnElement[Any] = literal_column("'simple'::regconfig")
        condition = _PG_DOCUMENT.op("@@")(func.to_tsquery(config, bindparam("tsquery", tsquery)))
        return select(*columns).where(condition)
    return select(*columns).where(*(_like(term) for term in terms))


def _like(term: str) -> ColumnElement[bool]:
    pattern = f"%{term}%"
    in_notes = and_(_TODOS.c.notes_searchable, func.lower(_TODOS.c.notes).like(pattern))
    return or_(func.lower(_TODOS.c.title).like(pattern), in_notes)


def _statement(
    terms: list[str],
    list_ids: list[str],
    *,
    completed: bool | None,
    after: tuple[datetime, str] | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> Select[Any]:
    dialect = db.session.get_bind().dialect.name
    query = _matching(terms, dialect)
    created, ident = _TODOS.c.created_at, _TODOS.c.id
    # On SQLite the unary + keeps the planner off the (list_id, created_at) index: it would
    # walk a whole list newest first, probing FTS5 once per todo (0.4 s for a rare word
    # among 10,000), where the matches looked up first and sorted take well under 1 ms,
    # and at most the sort of every match for a word in every todo.
    list_column = literal_column("+todos.list_id") if dialect == "sqlite" else _TODOS.c.list_id
    query = query.where(list_column.in_(list_ids))
    if completed is not None:
        query = query.where(_TODOS.c.completed == completed)
    if after is not None:
        query = query.where(or_(created < after[0], and_(created == after[0], ident < after[1])))
        query = query.order_by(created.desc(), ident.desc())
    elif before is not None:
        query = query.where(or_(created > before[0], and_(created == before[0], ident > before[1])))
        query = query.order_by(created.asc(), ident.asc())
    else:
        query = query.order_by(created.desc(), ident.desc())
    return query.limit(limit + 1)


def search_todos(
    actor: User,
    query: str,
    *,
    list_id: str | None = None,
    completed: bool | None = None,
    limit: int = 10,
    cursor: str | None = None,
    before: str | None = None,
) -> Results:
    """A page of the todos `actor` can see that match `query`, newest first.

    `cursor` continues after a page (older todos), `before` goes back (newer ones); the
    newest page has no `newer_cursor`.
    """
    terms = search_terms(query)
    after = decode_cursor(cursor) if cursor else None
    back = decode_cursor(before) if before and not after else None
    list_ids = [visible_list_id(actor, list_id)] if list_id else visible_list_ids(actor)
    if not list_ids:
        return Results([], None, None, terms, {}, notes_searched())
    statement = _statement(
        terms, list_ids, completed=completed, after=after, before=back, limit=limit
    )
    rows = [TodoRow(*row) for row in db.session.execute(statement)]
    more = len(rows) > limit
    rows = rows[:limit]
    if back is not None:
        rows.reverse()
        if not more:  # back at the newest page: exactly the first page, with no way up
            return search_todos(actor, query, list_id=list_id, completed=completed, limit=limit)
    older = more or back is not None
    newer = back is not None or after is not None
    return Results(
        rows,
        encode_cursor(rows[-1].created_at, rows[-1].id) if rows and older else None,
        encode_cursor(rows[0].created_at, rows[0].id) if rows and newer else None,
        terms,
        _lists_of(rows),
        notes_searched(),
    )


def _lists_of(rows: list[TodoRow]) -> dict[str, TodoList]:
    ids = {row.list_id for row in rows}
    if not ids:
        return {}
    return {
        item.id: item for item in db.session.scalars(select(TodoList).where(TodoList.id.in_(ids)))
    }


def search_plan(actor: User, query: str) -> str:
    """The database's plan for a first page of `query` (EXPLAIN), to check the index is used."""
    terms = search_terms(query)
    list_ids = visible_list_ids(actor) or [""]
    statement = _statement(terms, list_ids, completed=None, after=None, before=None, limit=10)
    dialect = db.session.get_bind().dialect
    sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if dialect.name == "sqlite" else "EXPLAIN "
    rows = db.session.execute(text(prefix + sql))
    return "\n".join(" ".join(str(value) for value in row) for row in rows)
