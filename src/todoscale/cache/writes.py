"""The scopes a unit of work changed, bumped by the session itself after its commit.

Each table whose rows feed cached values says which scope a row belongs to (`track`: a
todo feeds its list's pages and its own lookups). The session records, as it writes, the
scopes of every tracked row it inserts, updates or deletes: ORM objects when they are
flushed (a todo moved between lists names both), bulk statements as they run (an INSERT
from its rows, an UPDATE or DELETE from the rows its WHERE clause matches, read first in
the same transaction). After the commit every recorded scope is bumped at once; after a
rollback they are forgotten. A service cannot forget to invalidate: it does not invalidate.

Not seen: writes on a connection of their own (not the session's) or as SQL text, unless
their writer says so (`wrote`: the table and the rows, whose scopes the rules give), and
rows the database changes by itself (ON DELETE CASCADE): writers of tracked rows delete
them explicitly, and whoever writes around the session calls `invalidate`. A bulk UPDATE
or DELETE is scoped by the rows its WHERE matched when read just before it: a matching
row another transaction commits in that instant is written without its scope bumped
(a value cached from it since lives at most LOCAL_CACHE_TTL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, has_app_context
from sqlalchemy import Table, event, inspect, select
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction

from todoscale.cache import local
from todoscale.cache.local import EPOCH, local_cache
from todoscale.extensions import db

# Past this many scopes in one commit (a bulk import or seed), bumping the epoch voids
# every entry at once, cheaper than writing one stamp per row.
MAX_SCOPES = 1_000
_PENDING = "todoscale.cache.touched"


@dataclass(frozen=True)
class _Rule:
    """A row of the table feeds `scope(row[column])`, through the columns in `read`."""

    scope: Callable[[Any], str]
    column: str
    read: frozenset[str] | None  # None: every column


_RULES: dict[str, list[_Rule]] = {}


def track(scope: Callable[[Any], str], column: Any, *, read: Iterable[Any] | None = None) -> None:
    """Declare that a row of `column`'s table feeds the cache scope `scope(row.column)`, so
    a write to it (to one of the columns in `read`, names or Columns, when given) bumps it
    after commit."""
    expression = getattr(column, "expression", column)  # a mapped attribute, or a Column
    names = None if read is None else frozenset(getattr(c, "name", c) for c in read)
    rule = _Rule(scope, expression.name, names)
    rules = _RULES.setdefault(expression.table.name, [])
    if rule not in rules:
        rules.append(rule)


def _record(session: Session, scopes: Iterable[str]) -> None:
    session.info.setdefault(_PENDING, set()).update(scopes)


def _scopes(rules: list[_Rule], row: Mapping[str, Any], changed: set[str] | None) -> set[str]:
    """The scopes of `row` whose rule reads a column in `changed` (None: every column)."""
    return {
        rule.scope(row[rule.column])
        for rule in rules
        if changed is None or rule.read is None or rule.read & changed
    }


def _rules_of(obj: Any) -> tuple[Any, list[_Rule]]:
    state = inspect(obj)
    return state, _RULES.get(state.mapper.local_table.name, [])


def _row(obj: Any, state: Any, rules: list[_Rule]) -> dict[str, Any]:
    # getattr, not the loaded dict: a column expired by an earlier commit is read again.
    columns = state.mapper.columns
    return {
        rule.column: getattr(obj, state.mapper.get_property_by_column(columns[rule.column]).key)
        for rule in rules
    }


def _before_flush(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    """Record the scopes of the tracked ORM objects about to be deleted (still readable)."""
    for obj in session.deleted:
        state, rules = _rules_of(obj)
        if rules:
            _record(session, _scopes(rules, _row(obj, state, rules), None))


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    """Record the scopes of the tracked ORM objects this flush inserted or changed (a
    changed one under its values before and after: a todo moved names both lists)."""
    for obj in (*session.new, *session.dirty):
        state, rules = _rules_of(obj)
        if not rules:
            continue
        row, changed = _row(obj, state, rules), None
        if obj in session.dirty:
            changed, before = set(), dict(row)
            for prop in state.mapper.column_attrs:
                history = state.attrs[prop.key].history
                if history.has_changes():
                    changed.add(prop.columns[0].name)
                    if history.deleted and prop.columns[0].name in before:
                        before[prop.columns[0].name] = history.deleted[0]
            _record(session, _scopes(rules, before, changed))
        _record(session, _scopes(rules, row, changed))


def _on_execute(state: ORMExecuteState) -> None:
    """Record the scopes of the tracked rows a bulk INSERT, UPDATE or DELETE writes."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    statement: Any = state.statement
    rules = _RULES.get(statement.table.name)
    if not rules:
        return
    values = {
        getattr(k, "name", k): v for k, v in (getattr(statement, "_values", None) or {}).items()
    }
    if state.is_insert:
        given: Any = state.parameters
        rows: list[Mapping[str, Any]] = given if isinstance(given, list) else [given or {}]
        literal = {name: getattr(value, "value", value) for name, value in values.items()}
        _record(state.session, set().union(*(_scopes(rules, {**literal, **r}, None) for r in rows)))
        return
    changed = None if state.is_delete else set(values)
    if changed is not None and not any(r.read is None or r.read & changed for r in rules):
        return  # an UPDATE of columns no cached value reads (a reminder's claim)
    columns = sorted({rule.column for rule in rules})
    moved = {name: _literal(values[name]) for name in columns if changed and name in values}
    query = select(*(statement.table.c[name] for name in columns))
    if statement.whereclause is not None:
        query = query.where(statement.whereclause)
    for found in state.session.execute(query):
        row = dict(found._mapping)
        _record(state.session, _scopes(rules, row, changed))
        if moved:  # an UPDATE that moves a row (a new list_id) feeds the new scope too
            _record(state.session, _scopes(rules, {**row, **moved}, changed))


def _literal(value: Any) -> Any:
    """The value an UPDATE sets a scope's column to: a plain value, else no scope is known."""
    if not hasattr(value, "value"):
        raise TypeError(f"cache.writes cannot tell which scope {value!r} moves a row to")
    return value.value


def wrote(table: Table, *rows: Mapping[str, Any], changed: Iterable[str] | None = None) -> None:
    """Record rows of `table` written by a statement the session's events do not see (a Core
    statement run on the session's connection, the hot paths' way): the track rules give
    their scopes, bumped after the commit like every other. For an UPDATE, pass the row as
    it was and as it is, and the `changed` columns."""
    rules = _RULES.get(table.name)
    if rules:
        names = None if changed is None else set(changed)
        _record(db.session(), set().union(*(_scopes(rules, row, names) for row in rows)))


def _after_commit(session: Session) -> None:
    """Bump every scope the committed unit of work recorded."""
    touched = session.info.pop(_PENDING, None)
    cache = local_cache() if touched and has_app_context() else None
    if cache is not None:
        cache.bump(*(sorted(touched) if len(touched) <= MAX_SCOPES else [EPOCH]))


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    """Forget what a unit of work that did not commit recorded."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


_LISTENERS = (
    ("before_flush", _before_flush),
    ("after_flush", _after_flush),
    ("do_orm_execute", _on_execute),
    ("after_commit", _after_commit),
    ("after_transaction_end", _after_transaction_end),
)


def init_app(app: Flask) -> None:
    """Turn the cache on (`local.init_app`) and have the session bump what it commits."""
    local.init_app(app)
    for name, listener in _LISTENERS:
        if not event.contains(db.session, name, listener):
            event.listen(db.session, name, listener)
