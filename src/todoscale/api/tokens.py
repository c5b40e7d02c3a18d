"""The tokens resource: exchange a password for a bearer token, and revoke it (or all)."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from todoscale.api.auth import bearer_token, current_user, token_required
from todoscale.api.operation import operation, query_param
from todoscale.api.schemas import TokenRead
from todoscale.exceptions import AuthenticationError, BadRequestError
from todoscale.services.accounts import authenticate, issue_token, revoke_token
from todoscale.services.tokens import revoke_user_tokens

bp = Blueprint("tokens", __name__, url_prefix="/tokens")


@bp.post("")
@operation("Issue a token (HTTP Basic)", ok=201, out=TokenRead, fails="401", security="basic")
def create() -> ResponseReturnValue:
    """Issue a token for the user named by HTTP Basic credentials."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
        raise AuthenticationError(
            "Send your username and password with HTTP Basic.", scheme="Basic"
        )
    try:
        user = authenticate(auth.username, auth.password)
    except AuthenticationError as exc:
        raise AuthenticationError(exc.detail, scheme="Basic") from exc
    token, expires_at = issue_token(user)
    return {"token": token, "expires_at": expires_at}, 201


@bp.delete("")
@operation(
    "Revoke the bearer token, or every token of its user",
    ok=204,
    fails="400 401",
    query=(
        query_param(
            "all",
            {"type": "boolean", "default": False},
            "true: revoke every token of the user, this one too; their Socket.IO connections close",
        ),
    ),
)
@token_required
def delete() -> ResponseReturnValue:
    """Revoke the bearer token of this request, or with `?all=true` every token of its user:
    they stop working everywhere at once (their Socket.IO connections close at the next
    re-check)."""
    every = request.args.get("all", "false")
    if every not in ("true", "false"):
        raise BadRequestError("'all' must be true or false.")
    if every == "true":
        revoke_user_tokens(current_user())
    else:
        revoke_token(bearer_token() or "")
    return "", 204
