"""The todos resource."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from todoscale.api.auth import current_user, token_required
from todoscale.api.body import bool_arg, int_arg, parse
from todoscale.api.schemas import TodoCreate, TodoUpdate, base_url, todo_json
from todoscale.cache import replay
from todoscale.models import TodoRow
from todoscale.services import search, todos

bp = Blueprint("todos", __name__, url_prefix="/todos")


@bp.get("")
@token_required
def index() -> ResponseReturnValue:
    """A page of the caller's todos, newest first; `next_cursor` continues it.

    With `q`, only those whose title or notes hold every word of it (full-text search).
    """
    list_id = request.args.get("list_id") or None
    completed = bool_arg("completed")
    limit = int_arg("limit", default=10, minimum=1, maximum=100)
    cursor = request.args.get("cursor") or None
    query = request.args.get("q")
    page: todos.Page | search.Results
    if query:
        page = search.search_todos(
            current_user(), query, list_id=list_id, completed=completed, limit=limit, cursor=cursor
        )
    else:
        page = todos.list_todos(
            current_user(), list_id=list_id, completed=completed, limit=limit, cursor=cursor
        )
        if cursor is None:
            replay.replayable()  # a first page: the query, the caller and cached values say it all
    base = base_url()
    body = {
        "items": [todo_json(todo, base) for todo in page.items],
        "next_cursor": page.next_cursor,
    }
    if page.next_cursor is None:
        return body
    next_query = urlencode({**request.args.to_dict(), "cursor": page.next_cursor})
    return body, {"Link": f'<{base}/todos?{next_query}>; rel="next"'}


@bp.post("")
@token_required
def create() -> ResponseReturnValue:
    """Add a todo."""
    body = parse(TodoCreate)
    todo = todos.create_todo(
        current_user(), title=body.title, list_id=body.list_id, notes=body.notes, due_at=body.due_at
    )
    data = todo_json(TodoRow.of(todo))
    return data, 201, {"Location": data["url"], "ETag": todos.etag_of(todo)}


@bp.get("/<todo_id>")
@token_required
def get(todo_id: str) -> ResponseReturnValue:
    """One todo; 304 when the client's `If-None-Match` names its current version."""
    todo = todos.get_todo(current_user(), todo_id)
    etag = todos.etag_of(todo)
    if request.if_none_match.contains_weak(etag.strip('"')):
        return "", 304, {"ETag": etag}
    return todo_json(todo), {"ETag": etag}


@bp.patch("/<todo_id>")
@token_required
def update(todo_id: str) -> ResponseReturnValue:
    """Change some fields; with `If-Match`, only if the todo is still that version (else 412)."""
    changes = parse(TodoUpdate).model_dump(exclude_unset=True)
    todo = todos.edit_todo(
        current_user(), todo_id, changes, if_match=request.headers.get("If-Match")
    )
    return todo_json(TodoRow.of(todo)), {"ETag": todos.etag_of(todo)}


@bp.delete("/<todo_id>")
@token_required
def delete(todo_id: str) -> ResponseReturnValue:
    """Delete a todo."""
    todos.delete_todo(current_user(), todo_id)
    return "", 204
