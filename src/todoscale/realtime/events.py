"""Services' signals turned into Socket.IO events, addressed to the rooms of the users concerned.

Every receiver runs in the process that made the change, right after its commit, and reads
who may see the change from the database then; a failure is logged, never raised.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import current_app

from todoscale import signals
from todoscale.api.schemas import job_json, list_json, todo_json
from todoscale.extensions import db
from todoscale.instruments import SOCKETIO_EMITTED
from todoscale.models import Job, Todo, TodoList, TodoRow
from todoscale.ops.tracing import event_span
from todoscale.services.lists import describe, member_ids

logger = logging.getLogger(__name__)

# app.extensions key of the process's Emitter (None: this process sends no events).
EMITTER_EXTENSION = "todoscale.realtime"

Receiver = Callable[..., None]
NOTIFICATION_FIELDS = (
    "id",
    "kind",
    "todo_id",
    "list_id",
    "title",
    "due_at",
    "created_at",
    "read_at",
)


def user_room(user_id: str) -> str:
    """The room of every connection of one user."""
    return f"user:{user_id}"


def send(event: str, data: dict[str, Any], user_ids: Iterable[str]) -> None:
    """Send `event` to every connection of `user_ids`, through this process's emitter."""
    emitter = current_app.extensions.get(EMITTER_EXTENSION)
    rooms = sorted({user_room(user_id) for user_id in user_ids})
    if emitter is None or not rooms:
        return
    # Plain JSON values (RFC 3339 times, as the API writes them) travel through any queue.
    plain = json.loads(current_app.json.dumps(data))
    with event_span(event):
        emitter.emit(event, plain, rooms)
    SOCKETIO_EMITTED.labels(event).inc()


def listening() -> bool:
    """True when this process's events can reach someone (else nothing is worth building)."""
    emitter = current_app.extensions.get(EMITTER_EXTENSION)
    return emitter is not None and bool(emitter.live())


def _receiver(function: Receiver) -> Receiver:
    @functools.wraps(function)
    def guarded(sender: object, **kwargs: Any) -> None:
        # First: reading the members and serializing cost a write more than its commit did
        # (measured) when no Socket.IO process was there to take the event.
        if not listening():
            return
        try:
            function(**kwargs)
        except Exception:  # process boundary: the change is committed; only its push is lost
            logger.exception("could not send the live update of %s", function.__name__)

    return guarded


@_receiver
def todo_created(*, todo: Todo, **_: Any) -> None:
    """A new todo: to everyone who can see its list."""
    send("todo.created", todo_json(TodoRow.of(todo)), member_ids(todo.list_id))


@_receiver
def todo_updated(*, todo: Todo, previous_list_id: str | None = None, **_: Any) -> None:
    """A changed todo; one that moved first leaves its previous list's readers."""
    if previous_list_id and previous_list_id != todo.list_id:
        gone = {"id": todo.id, "list_id": previous_list_id}
        send("todo.deleted", gone, member_ids(previous_list_id))
    send("todo.updated", todo_json(TodoRow.of(todo)), member_ids(todo.list_id))


@_receiver
def todo_deleted(*, todo_id: str, list_id: str, **_: Any) -> None:
    """A deleted todo: to everyone who could see its list."""
    send("todo.deleted", {"id": todo_id, "list_id": list_id}, member_ids(list_id))


def _send_list(todo_list: TodoList) -> None:
    send("list.updated", list_json(describe([todo_list])[0]), member_ids(todo_list.id))


@_receiver
def list_updated(*, todo_list: TodoList, **_: Any) -> None:
    """A created or renamed list: to its owner and members."""
    _send_list(todo_list)


@_receiver
def list_deleted(*, list_id: str, member_ids: list[str], **_: Any) -> None:
    """A deleted list: to everyone who could see it."""
    send("list.deleted", {"id": list_id}, member_ids)


@_receiver
def membership_changed(*, list_id: str, user_id: str, added: bool, **_: Any) -> None:
    """Members changed: the list to its members now; a removed user loses it."""
    if not added:
        send("list.deleted", {"id": list_id}, [user_id])
    todo_list = db.session.get(TodoList, list_id)
    if todo_list is not None:
        _send_list(todo_list)


@_receiver
def job_updated(*, job: Job, **_: Any) -> None:
    """A job's status or progress: to its owner only."""
    send("job.updated", job_json(job), [job.user_id])


@_receiver
def notifications_created(*, notifications: Iterable[Any], **_: Any) -> None:
    """New in-app notifications: each to its own user."""
    for item in notifications:
        payload = {field: getattr(item, field) for field in NOTIFICATION_FIELDS}
        send("notification.created", payload, [item.user_id])


RECEIVERS: dict[Any, Receiver] = {
    signals.todo_created: todo_created,
    signals.todo_updated: todo_updated,
    signals.todo_deleted: todo_deleted,
    signals.list_updated: list_updated,
    signals.list_deleted: list_deleted,
    signals.membership_changed: membership_changed,
    signals.job_updated: job_updated,
    signals.notifications_created: notifications_created,
}


def connect_receivers() -> None:
    """Connect every receiver; again is a no-op (blinker keys receivers by identity)."""
    for signal, receiver in RECEIVERS.items():
        signal.connect(receiver, weak=False)
