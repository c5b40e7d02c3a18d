"""The users resource: registration and the caller's own account."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from todoscale.api.auth import current_user, token_required
from todoscale.api.body import parse
from todoscale.api.operation import operation
from todoscale.api.schemas import UserCreate, UserRead, user_json
from todoscale.exceptions import NotFoundError
from todoscale.services.accounts import register_user

bp = Blueprint("users", __name__, url_prefix="/users")


@bp.post("")
@operation("Register", ok=201, out=UserRead, body=UserCreate, fails="409 422", security=None)
def create() -> ResponseReturnValue:
    """Register a user (with their default `Inbox` list)."""
    body = parse(UserCreate)
    user = register_user(body.username, body.email, body.password)
    data = user_json(user)
    return data, 201, {"Location": data["url"]}


@bp.get("/me")
@operation("The caller's account", ok=200, out=UserRead, fails="401")
@token_required
def me() -> ResponseReturnValue:
    """The caller's account."""
    return user_json(current_user())


@bp.get("/<user_id>")
@operation("A user: only the caller's own account", ok=200, out=UserRead, fails="401 404")
@token_required
def get(user_id: str) -> ResponseReturnValue:
    """A user by id: only the caller's own account is visible."""
    user = current_user()
    if user.id != user_id:
        raise NotFoundError("No such user.")
    return user_json(user)
