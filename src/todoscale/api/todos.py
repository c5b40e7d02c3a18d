"""The todos resource."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from todoscale.api.auth import current_user, token_required
from todoscale.api.body import bool_arg, int_arg, parse
from todoscale.api.operation import operation, query_param
from todoscale.api.schemas import TodoCreate, TodoPage, TodoRead, TodoUpdate, base_url, todo_json
from todoscale.cache import replay
from todoscale.models import TodoRow
from todoscale.services import pagination, search, todos

bp = Blueprint("todos", __name__, url_prefix="/todos")

# The `limit` query parameter's bounds: checked by the view and stated by the document.
PAGE_SIZE = {"minimum": 1, "maximum": 100, "default": 10}


@bp.get("")
@operation(
    "A page of todos, newest first",
    ok=200,
    out=TodoPage,
    fails="400 401 404",
    query=(
        query_param("list_id", {"type": "string"}, "Only this list's todos"),
        query_param("completed", {"type": "boolean"}, "Only done (true) or open (false) todos"),
        query_param("limit", {"type": "integer", **PAGE_SIZE}, "Page size"),
        query_param(
            "cursor",
            {"type": "string", "pattern": r"^[A-Za-z0-9_-]*$", "maxLength": pagination.CURSOR_MAX},
            "`next_cursor` of the previous page, as it was given: opaque (unpadded base64url); "
            "an empty one is none, and one this server did not issue is 400",
        ),
        query_param(
            "q",
            {"type": "string", "maxLength": search.QUERY_MAX},
            "Full-text search: only todos whose title or notes hold every word of `q` "
            "(whole words, any case; the words are its runs of letters and digits, the first "
            f"{search.TERMS_MAX} of them). Titles only when notes are encrypted at rest. An empty "
            f"`q` is no search; one without a letter or digit, or longer than {search.QUERY_MAX} "
            "characters, is 400.",
        ),
    ),
)
@token_required
def index() -> ResponseReturnValue:
    """A page of the caller's todos, newest first; `next_cursor` continues it.

    With `q`, only those whose title or notes hold every word of it (full-text search).
    """
    list_id = request.args.get("list_id") or None
    completed = bool_arg("completed")
    limit = int_arg("limit", **PAGE_SIZE)
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
@operation("Add a todo", ok=201, out=TodoRead, body=TodoCreate, fails="401 404 422")
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
@operation("One todo", ok=200, out=TodoRead, fails="401 404")
@token_required
def get(todo_id: str) -> ResponseReturnValue:
    """One todo; 304 when the client's `If-None-Match` names its current version."""
    todo = todos.get_todo(current_user(), todo_id)
    etag = todos.etag_of(todo)
    if request.if_none_match.contains_weak(etag.strip('"')):
        return "", 304, {"ETag": etag}
    return todo_json(todo), {"ETag": etag}


@bp.patch("/<todo_id>")
@operation("Change a todo", ok=200, out=TodoRead, body=TodoUpdate, fails="401 404 412 422")
@token_required
def update(todo_id: str) -> ResponseReturnValue:
    """Change some fields; with `If-Match`, only if the todo is still that version (else 412)."""
    changes = parse(TodoUpdate).model_dump(exclude_unset=True)
    todo = todos.edit_todo(
        current_user(), todo_id, changes, if_match=request.headers.get("If-Match")
    )
    return todo_json(TodoRow.of(todo)), {"ETag": todos.etag_of(todo)}


@bp.delete("/<todo_id>")
@operation("Delete a todo", ok=204, fails="401 404")
@token_required
def delete(todo_id: str) -> ResponseReturnValue:
    """Delete a todo."""
    todos.delete_todo(current_user(), todo_id)
    return "", 204
