"""The lists resource and its members."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from todoscale.api.auth import current_user, token_required
from todoscale.api.body import parse
from todoscale.api.operation import operation
from todoscale.api.schemas import (
    ListCollection,
    ListCreate,
    ListRead,
    ListUpdate,
    MemberCreate,
    list_json,
)
from todoscale.services import lists

bp = Blueprint("lists", __name__, url_prefix="/lists")


@bp.get("")
@operation("Lists the caller can see", ok=200, out=ListCollection, fails="401")
@token_required
def index() -> ResponseReturnValue:
    """Every list the caller owns or is a member of."""
    return {"items": [list_json(info) for info in lists.list_lists(current_user())]}


@bp.post("")
@operation("Create a list", ok=201, out=ListRead, body=ListCreate, fails="401 422")
@token_required
def create() -> ResponseReturnValue:
    """Create a list."""
    body = parse(ListCreate)
    data = list_json(lists.create_list(current_user(), body.name))
    return data, 201, {"Location": data["url"]}


@bp.get("/<list_id>")
@operation("One list", ok=200, out=ListRead, fails="401 404")
@token_required
def get(list_id: str) -> ResponseReturnValue:
    """One list."""
    return list_json(lists.get_list(current_user(), list_id))


@bp.patch("/<list_id>")
@operation("Rename a list", ok=200, out=ListRead, body=ListUpdate, fails="401 403 404 422")
@token_required
def update(list_id: str) -> ResponseReturnValue:
    """Rename a list (owner only)."""
    body = parse(ListUpdate)
    return list_json(lists.rename_list(current_user(), list_id, body.name))


@bp.delete("/<list_id>")
@operation("Delete a list and its todos", ok=204, fails="401 403 404 409")
@token_required
def delete(list_id: str) -> ResponseReturnValue:
    """Delete a list and its todos (owner only; never the default list)."""
    lists.delete_list(current_user(), list_id)
    return "", 204


@bp.post("/<list_id>/members")
@operation("Share a list", ok=201, out=ListRead, body=MemberCreate, fails="401 403 404 409 422")
@token_required
def add_member(list_id: str) -> ResponseReturnValue:
    """Share a list with a user (owner only)."""
    body = parse(MemberCreate)
    data = list_json(lists.share_list(current_user(), list_id, username=body.username))
    return data, 201, {"Location": data["url"]}


@bp.delete("/<list_id>/members/<username>")
@operation(
    "Remove a member (409: the owner cannot leave their own list)", ok=204, fails="401 403 404 409"
)
@token_required
def remove_member(list_id: str, username: str) -> ResponseReturnValue:
    """Remove a member: the owner removes anyone, a member only themself."""
    lists.remove_member(current_user(), list_id, username=username)
    return "", 204
