"""Todos: reading pages of them, creating, editing and deleting them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Select, bindparam, literal, select, tuple_, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.util import identity_key

from todoscale.cache import Codec, memoize, track, wrote
from todoscale.exceptions import NotFoundError, PreconditionFailedError
from todoscale.extensions import db
from todoscale.models import Membership, Todo, TodoRow, User, new_id, utcnow
from todoscale.models import crypto as sealing
from todoscale.models.todos import READ_COLUMNS
from todoscale.services.lists import (
    default_list_id,
    member_scope,
    visible_list_id,
    visible_list_ids,
)
from todoscale.services.pagination import decode_cursor, encode_cursor
from todoscale.services.rules import check_due_at, check_notes, check_title
from todoscale.signals import todo_created, todo_deleted, todo_updated

EDITABLE = frozenset({"title", "notes", "completed", "due_at", "list_id"})
# Lists one page statement reads at most (an index range scan each, merged): SQLite refuses
# a compound SELECT of more than 500 parts, so a reader of more lists gets several
# statements, each bounded by the page size, merged here.
LISTS_PER_QUERY = 200


_TODOS = Todo.__table__


@dataclass(frozen=True)
class Page:
    """One page of todos, newest first, and the cursor of the next page (None at the end)."""

    items: Sequence[TodoRow]
    next_cursor: str | None


_TIMES = frozenset(index for index, name in enumerate(TodoRow._fields) if name.endswith("_at"))
_NOTES = TodoRow._fields.index("notes")


def _row_to_json(row: TodoRow) -> list[Any]:
    # Notes are sealed again for Redis when encryption is on: never plaintext there.
    return [*row[:_NOTES], sealing.seal(row.notes), *row[_NOTES + 1 :]]


def _row_from_json(values: list[Any]) -> TodoRow:
    fields: list[Any] = [
        datetime.fromisoformat(value) if index in _TIMES and value is not None else value
        for index, value in enumerate(values)
    ]
    fields[_NOTES] = sealing.unseal(fields[_NOTES])
    return TodoRow(*fields)


# How rows and pages travel through the shared tier: JSON arrays in TodoRow's order.
_ROW_CODEC: Codec[TodoRow] = Codec(dump=_row_to_json, load=_row_from_json)
_PAGE_CODEC: Codec[Page] = Codec(
    dump=lambda page: {
        "items": [_row_to_json(row) for row in page.items],
        "next": page.next_cursor,
    },
    load=lambda data: Page([_row_from_json(row) for row in data["items"]], data["next"]),
)


def etag_of(todo: Todo | TodoRow) -> str:
    """The strong entity tag of a todo's current version."""
    return f'"{todo.id}.{todo.version}"'


def todo_scope(todo_id: str) -> str:
    """The cache scope of one todo: bumped after every write to it."""
    return f"todo:{todo_id}"


# The keyset of a page, compared as one row value: `(created_at, id) < (:c, :i)` bounds the
# index range scan on (list_id, created_at, id) itself, where the equivalent OR of two
# comparisons only filters the whole list's rows (page 500 then cost 3 times page 1).
_keyset = tuple_(_TODOS.c.created_at, _TODOS.c.id)


def _page_of(n: int, completed: bool, after: bool, limit: Any) -> Select[Any]:
    query = select(*READ_COLUMNS).where(_TODOS.c.list_id == bindparam(f"list{n}"))
    if completed:
        query = query.where(_TODOS.c.completed == bindparam("completed"))
    if after:
        cursor = (
            bindparam("after_created", type_=_TODOS.c.created_at.type),
            bindparam("after_id", type_=_TODOS.c.id.type),
        )
        query = query.where(_keyset < tuple_(*cursor))
    return query.order_by(_TODOS.c.created_at.desc(), _TODOS.c.id.desc()).limit(limit)


@lru_cache(maxsize=256)
def _page_query(lists: int, completed: bool, after: bool) -> Select[Any]:
    """The page statement for `lists` lists, built once per shape and reused.

    One index range scan per list (list_id, created_at, id), merged: the cost is
    lists x page size, not the number of todos the user can see.
    """
    limit: Any = bindparam("limit")
    if lists == 1:
        return _page_of(0, completed, after, limit)
    merged = union_all(
        *(_page_of(n, completed, after, limit).subquery().select() for n in range(lists))
    ).subquery()
    return select(merged).order_by(merged.c.created_at.desc(), merged.c.id.desc()).limit(limit)


def list_todos(
    actor: User,
    *,
    list_id: str | None = None,
    completed: bool | None = None,
    limit: int = 10,
    cursor: str | None = None,
) -> Page:
    """A page of the todos `actor` can see (in one list, or all), newest first.

    Keyset paging on (created_at, id): a todo inserted while a client pages sorts before
    the cursor, so the pages never repeat or skip what existed when paging began.
    First pages (the reference read) come from the local cache while neither the actor's
    memberships nor any list on the page changed: each commit bumps the lists it wrote.
    """
    after = decode_cursor(cursor) if cursor else None
    if after is not None:
        list_ids = [visible_list_id(actor, list_id)] if list_id else visible_list_ids(actor)
        return _read_page(list_ids, completed, after, limit)
    lists: list[str] = []

    def scopes() -> list[str]:
        # The lists' ids come from the cache under the memberships' stamp, and this page
        # is stamped with it: a change in between only costs a miss.
        lists[:] = [visible_list_id(actor, list_id)] if list_id else visible_list_ids(actor)
        return [member_scope(actor.id), *map(list_scope, lists)]

    page = memoize(
        f"page:{actor.id}:{list_id or ''}:{completed}:{limit}",
        scopes,
        lambda: _read_page(lists, completed, None, limit),
        _PAGE_CODEC,
    )
    return cast(Page, page)


def list_scope(list_id: str) -> str:
    """The local cache scope of a list's todos: bumped after every write to them."""
    return f"list:{list_id}"


track(list_scope, Todo.list_id, read=READ_COLUMNS)
track(todo_scope, Todo.id, read=READ_COLUMNS)


def _read_page(
    list_ids: list[str], completed: bool | None, after: tuple[datetime, str] | None, limit: int
) -> Page:
    items: list[TodoRow] = []
    for start in range(0, len(list_ids), LISTS_PER_QUERY):
        items += _read_rows(list_ids[start : start + LISTS_PER_QUERY], completed, after, limit + 1)
    if len(list_ids) > LISTS_PER_QUERY:  # several statements: merge their pages
        items.sort(key=lambda row: (row.created_at, row.id), reverse=True)
        del items[limit + 1 :]
    if len(items) <= limit:
        return Page(items, None)
    last = items[limit - 1]
    return Page(items[:limit], encode_cursor(last.created_at, last.id))


def _read_rows(
    list_ids: list[str], completed: bool | None, after: tuple[datetime, str] | None, limit: int
) -> list[TodoRow]:
    """The newest `limit` todos of these lists (at most LISTS_PER_QUERY), in one statement."""
    params: dict[str, Any] = {f"list{n}": each for n, each in enumerate(list_ids)}
    params.update(limit=limit, completed=completed)
    if after is not None:
        params.update(after_created=after[0], after_id=after[1])
    query = _page_query(len(list_ids), completed is not None, after is not None)
    return [TodoRow(*row) for row in db.session.connection().execute(query, params)]


def visible_todo(actor: User, todo_id: str) -> Todo:
    """Return the todo if it is in a list `actor` can see; NotFoundError otherwise."""
    if "\x00" in todo_id:  # no id has one, and PostgreSQL refuses NUL in a query (a 500)
        raise NotFoundError("No such todo.")
    todo = db.session.scalars(
        select(Todo)
        .join(Membership, Membership.list_id == Todo.list_id)
        .where(Todo.id == todo_id, Membership.user_id == actor.id)
    ).first()
    if todo is None:
        raise NotFoundError("No such todo.")
    return todo


_TODO_FOR_READER = (
    select(*READ_COLUMNS)
    .join(Membership, Membership.list_id == _TODOS.c.list_id)
    .where(_TODOS.c.id == bindparam("todo_id"), Membership.user_id == bindparam("user_id"))
)


def get_todo(actor: User, todo_id: str) -> TodoRow:
    """One todo `actor` can see, read-only; NotFoundError otherwise.

    Cached like first pages, misses included: asking again for an id that does not exist
    (or is not visible) is answered without the database until something changes.
    """
    if "\x00" in todo_id or len(todo_id) > 64:
        raise NotFoundError("No such todo.")
    row = memoize(
        f"todo:{actor.id}:{todo_id}",
        [member_scope(actor.id), todo_scope(todo_id)],
        lambda: _read_todo(actor.id, todo_id),
        _ROW_CODEC,
    )
    if row is None:
        raise NotFoundError("No such todo.")
    return row


def _read_todo(user_id: str, todo_id: str) -> TodoRow | None:
    found = (
        db.session.connection()
        .execute(_TODO_FOR_READER, {"todo_id": todo_id, "user_id": user_id})
        .first()
    )
    return None if found is None else TodoRow(*found)


_INSERT_TODO = _TODOS.insert()


def create_todo(
    actor: User,
    *,
    title: str,
    list_id: str | None = None,
    notes: str = "",
    due_at: datetime | None = None,
) -> Todo:
    """Add a todo to a list `actor` can see (their default list when none is named).

    One Core INSERT rather than the ORM's unit of work, which cost a third of a `POST`
    (py-spy); the todo returned is detached, holding every column as written.
    """
    target = visible_list_id(actor, list_id) if list_id else default_list_id(actor)
    now = utcnow()
    values = {
        "id": new_id(),
        "list_id": target,
        "creator_id": actor.id,
        "title": check_title(title),
        "notes": check_notes(notes),
        "due_at": check_due_at(due_at),
        "completed": False,
        "completed_at": None,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    with _into_list():
        result = db.session.connection().execute(_INSERT_TODO, values)
        wrote(_TODOS, values)  # past the session's events: its scopes, bumped at the commit
    # The parameters as inserted include the columns' own defaults (`notes_searchable`);
    # a column without any (`reminded_for`) was stored NULL.
    inserted = result.last_inserted_params()
    assert not isinstance(inserted, list)  # one row: one mapping
    todo = Todo(**{name: inserted.get(name) for name in _TODO_COLUMNS})
    make_transient_to_detached(todo)
    todo_created.send(create_todo, todo=todo)
    return todo


@contextmanager
def _into_list() -> Iterator[None]:
    """Commit what the block writes into a list; NotFoundError if the list was deleted
    meanwhile.

    The list was visible when checked, but a concurrent delete can commit between that
    check and this commit: the foreign key refuses the row, and the writer hears 404.
    The todo a write answers with is detached, holding the values just written: never
    reloaded, so a delete of the list that commits just after this commit cannot turn the
    write's answer into a 500; the write happened first, and its answer stands.
    """
    try:
        yield
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise NotFoundError("No such list: it was deleted.") from exc


def _matches(if_match: str, todo: Todo) -> bool:
    current = etag_of(todo)
    tags = [tag.strip() for tag in if_match.split(",")]
    return any(tag in ("*", current) or tag.removeprefix("W/") == current for tag in tags)


def _apply(actor: User, todo: Todo, changes: dict[str, Any]) -> bool:
    changed = False
    for field, value in changes.items():
        if field == "title":
            value = check_title(value)
        elif field == "notes":
            value = check_notes(value)
        elif field == "due_at":
            value = check_due_at(value)
        elif field == "list_id" and value != todo.list_id:
            value = visible_list_id(actor, value)
        elif field == "completed" and value != todo.completed:
            todo.completed_at = utcnow() if value else None
        if getattr(todo, field) != value:
            setattr(todo, field, value)
            changed = True
    return changed


_TODO_COLUMNS = tuple(column.key for column in _TODOS.columns)
_TODO_TO_EDIT = (
    select(_TODOS)
    .join(Membership, Membership.list_id == _TODOS.c.list_id)
    .where(_TODOS.c.id == bindparam("todo_id"), Membership.user_id == bindparam("user_id"))
)
_UPDATE_TODO = _TODOS.update().where(
    _TODOS.c.id == bindparam("todo_id"), _TODOS.c.version == bindparam("read_version")
)


def _todo_to_edit(actor: User, todo_id: str) -> Todo:
    """The todo to edit, detached: as stored (`visible_todo` without the ORM's loading), or
    as this session already holds it, which is what its caller read (an edit based on a
    version changed since then is then refused, as the ORM's version counter refuses it)."""
    if "\x00" in todo_id:
        raise NotFoundError("No such todo.")
    params = {"todo_id": todo_id, "user_id": actor.id}
    row = db.session.connection().execute(_TODO_TO_EDIT, params).first()
    if row is None:
        raise NotFoundError("No such todo.")
    held = db.session.identity_map.get(identity_key(Todo, todo_id))
    values = row._mapping if held is None else {n: getattr(held, n) for n in _TODO_COLUMNS}
    todo = Todo(**values)
    make_transient_to_detached(todo)
    return todo


def edit_todo(
    actor: User,
    todo_id: str,
    changes: dict[str, Any],
    *,
    if_match: str | None = None,
    version: int | None = None,
) -> Todo:
    """Change some fields of a todo; with `if_match` (an ETag, the API's) or `version` (the
    web form's), only if it is still that version.

    One Core UPDATE conditional on the version read (the version counter's rule, without
    the ORM's unit of work: 40 % of a `PATCH`, pyinstrument), so a concurrent writer that
    got in first makes this one fail with 412, never vanish. The todo returned is detached.
    """
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    todo = _todo_to_edit(actor, todo_id)
    stale = (if_match is not None and not _matches(if_match, todo)) or (
        version is not None and version != todo.version
    )
    if stale:
        raise PreconditionFailedError("The todo has changed since you read it; fetch it again.")
    before = {name: getattr(todo, name) for name in _TODO_COLUMNS}
    if not _apply(actor, todo, changes):
        db.session.rollback()  # ends the read's transaction
        return todo
    todo.updated_at = utcnow()
    todo.version = before["version"] + 1
    values = {name: getattr(todo, name) for name in _TODO_COLUMNS}
    values = {name: value for name, value in values.items() if value != before[name]}
    with _into_list():  # a move into a list deleted meanwhile is a 404
        # The SET clause is the changed columns' (the parameters' keys); the columns' own
        # `onupdate` (`notes_searchable`) join them.
        params = {**values, "todo_id": todo.id, "read_version": before["version"]}
        result = db.session.connection().execute(_UPDATE_TODO, params)
        if result.rowcount != 1:
            db.session.rollback()
            raise PreconditionFailedError(
                "Someone else changed the todo at the same moment; fetch it again."
            )
        wrote(_TODOS, before, {**before, **values}, changed=values)
    previous_list_id = before["list_id"]
    todo_updated.send(edit_todo, todo=todo, previous_list_id=previous_list_id)
    return todo


def complete_todo(actor: User, todo_id: str, *, completed: bool = True) -> Todo:
    """Mark a todo done (or not done) and announce it."""
    return edit_todo(actor, todo_id, {"completed": completed})


def delete_todo(actor: User, todo_id: str) -> None:
    """Delete a todo from a list `actor` can see."""
    todo = visible_todo(actor, todo_id)
    list_id = todo.list_id
    db.session.delete(todo)
    try:
        db.session.commit()
    except StaleDataError:  # deleted (or changed) concurrently: the end state is the same
        db.session.rollback()
    todo_deleted.send(delete_todo, todo_id=todo_id, list_id=list_id)


def list_newer_todos(
    actor: User, *, list_id: str, before: str, limit: int = 10
) -> tuple[Page, str | None]:
    """The todos of a list just newer than the `before` cursor, newest first (paging back up).

    Returns the page, whose `next_cursor` leads down again, and the cursor of still newer
    todos: None when the page reached the newest, which is then exactly `list_todos`'s
    first page, so a reader who pages down and back up lands where they started.
    """
    created_at, item_id = decode_cursor(before)
    visible_list_id(actor, list_id)
    query = (
        select(*READ_COLUMNS)
        .where(
            _TODOS.c.list_id == list_id,
            _keyset
            > tuple_(
                literal(created_at, _TODOS.c.created_at.type), literal(item_id, _TODOS.c.id.type)
            ),
        )
        .order_by(_TODOS.c.created_at.asc(), _TODOS.c.id.asc())
        .limit(limit + 1)
    )
    rows = [TodoRow(*row) for row in db.session.connection().execute(query)]
    if len(rows) <= limit:
        return list_todos(actor, list_id=list_id, limit=limit), None
    items = rows[:limit][::-1]
    newest, oldest = items[0], items[-1]
    page = Page(items, encode_cursor(oldest.created_at, oldest.id))
    return page, encode_cursor(newest.created_at, newest.id)
