"""Due-date reminders: every member of a list hears once that one of its todos is coming due."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, or_, select, update
from sqlalchemy.exc import IntegrityError

from todoscale.config.current import app_settings
from todoscale.extensions import db
from todoscale.models import Membership, Notification, Todo, new_id, utcnow
from todoscale.signals import notifications_created

logger = logging.getLogger(__name__)

REMINDER = "reminder"
# Todos claimed per transaction: a busy minute is several short transactions, not one long one.
BATCH = 200

_TODOS = Todo.__table__
_NOT_REMINDED = or_(_TODOS.c.reminded_for.is_(None), _TODOS.c.reminded_for != _TODOS.c.due_at)


def send_due_reminders(now: datetime | None = None, *, window: timedelta | None = None) -> int:
    """Notify every member of each todo coming due within `window` (by default
    REMINDER_WINDOW_MINUTES), once; return how many."""
    now = now or utcnow()
    if window is None:
        window = timedelta(minutes=app_settings()["REMINDER_WINDOW_MINUTES"])
    until = now + window
    total = 0
    while True:
        due = _find_due(now, until)
        if not due:
            return total
        total += _remind(due, now)
        if len(due) < BATCH:
            return total


def _find_due(now: datetime, until: datetime) -> list[Row[Any]]:
    query = (
        select(_TODOS.c.id, _TODOS.c.list_id, _TODOS.c.title, _TODOS.c.due_at)
        .where(
            _TODOS.c.completed.is_(False),
            _TODOS.c.due_at >= now,
            _TODOS.c.due_at <= until,
            _NOT_REMINDED,
        )
        .order_by(_TODOS.c.due_at, _TODOS.c.id)
        .limit(BATCH)
    )
    return list(db.session.execute(query))


def _claim(todo: Row[Any]) -> bool:
    """Mark the todo reminded for its due time; False when another worker got there first.

    Conditional on the due time read too: a todo moved meanwhile is left for the next tick.
    The row lock the UPDATE takes makes a concurrent claimer wait, then find nothing to do.
    """
    claimed = db.session.execute(
        update(_TODOS)
        .where(_TODOS.c.id == todo.id, _TODOS.c.due_at == todo.due_at, _NOT_REMINDED)
        .values(reminded_for=todo.due_at)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def _members(due: list[Row[Any]]) -> dict[str, list[str]]:
    """The user ids of each list of the batch: owners and members, one query."""
    members: dict[str, list[str]] = defaultdict(list)
    rows = db.session.execute(
        select(Membership.list_id, Membership.user_id).where(
            Membership.list_id.in_({todo.list_id for todo in due})
        )
    )
    for list_id, user_id in rows:
        members[list_id].append(user_id)
    return members


def _already_sent(due: list[Row[Any]]) -> set[tuple[str, str, datetime]]:
    """(user, todo, due time) of reminders sent before: a due time moved away and back again."""
    rows = db.session.execute(
        select(Notification.user_id, Notification.todo_id, Notification.due_at).where(
            Notification.kind == REMINDER, Notification.todo_id.in_([todo.id for todo in due])
        )
    )
    return {(user_id, todo_id, due_at) for user_id, todo_id, due_at in rows}


def _remind(due: list[Row[Any]], now: datetime) -> int:
    """Claim the todos and write their notifications in one transaction, then announce them."""
    members, sent = _members(due), _already_sent(due)
    notifications = [
        Notification(
            id=new_id(),
            user_id=user_id,
            kind=REMINDER,
            todo_id=todo.id,
            list_id=todo.list_id,
            title=todo.title,
            due_at=todo.due_at,
            created_at=now,
        )
        for todo in due
        if _claim(todo)
        for user_id in members[todo.list_id]
        if (user_id, todo.id, todo.due_at) not in sent
    ]
    ids = [notification.id for notification in notifications]
    db.session.add_all(notifications)
    try:
        db.session.commit()
    except IntegrityError:
        # The unique constraint caught a reminder already sent (a claim raced past us):
        # nothing of this batch is kept, and the next tick claims what is still due.
        db.session.rollback()
        logger.warning("reminders: a batch met reminders already sent; left for the next tick")
        return 0
    # The claim changed no column a reader sees (reminded_for is internal): the session
    # bumps no cache scope for it (cache.writes tracks only the columns cached values read).
    if notifications:
        # One query reloads the rows the commit expired, not one per receiver's access.
        db.session.scalars(select(Notification).where(Notification.id.in_(ids))).all()
        notifications_created.send(send_due_reminders, notifications=notifications)
    return len(notifications)
