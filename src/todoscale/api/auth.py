"""Bearer-token authentication for the API."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import g, request

from todoscale.exceptions import AuthenticationError
from todoscale.models import User
from todoscale.services.accounts import user_for_token

P = ParamSpec("P")
R = TypeVar("R")


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer ...` header, if there is one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_user() -> User:
    """The user the request authenticated as (inside a `token_required` view)."""
    user: User = g.user
    return user


def token_required(view: Callable[P, R]) -> Callable[P, R]:
    """Run `view` only with a live bearer token; 401 with `WWW-Authenticate` otherwise."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token = bearer_token()
        user = user_for_token(token) if token else None
        if user is None:
            raise AuthenticationError(
                "Send a valid token: 'Authorization: Bearer <token>' (POST /api/v1/tokens)."
            )
        g.user = user
        return view(*args, **kwargs)

    return wrapper
