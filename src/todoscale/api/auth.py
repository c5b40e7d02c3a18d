"""Bearer-token authentication for the API (Flask-HTTPAuth's `HTTPTokenAuth`)."""

from __future__ import annotations

import logging

from flask import Response, after_this_request, g, request
from flask_httpauth import HTTPTokenAuth
from sqlalchemy.exc import SQLAlchemyError

from todoscale.exceptions import AuthenticationError
from todoscale.models import User
from todoscale.services.accounts import authenticate_token
from todoscale.services.tokens import note_token_used

logger = logging.getLogger(__name__)

auth = HTTPTokenAuth(scheme="Bearer", realm="todoscale")


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer ...` header, if there is one."""
    found = request.authorization
    if found is None or found.type != "bearer" or not found.token:
        return None
    return found.token.strip() or None


@auth.verify_token
def _verify(token: str) -> User | None:
    """The user of a live token; its use is noted once the view has answered (coarsely:
    see `note_token_used`)."""
    found = authenticate_token(token.strip()) if token.strip() else None
    if found is None:
        return None
    # g.user: who acts, for the request log and everything else that asks the request.
    g.user, token_id = found

    @after_this_request
    def noted(response: Response) -> Response:
        try:
            note_token_used(token_id)
        except SQLAlchemyError:  # a bookkeeping write must never fail the answer
            logger.warning("could not record the use of token %s", token_id, exc_info=True)
        return response

    user: User = g.user
    return user


@auth.error_handler
def _refused(status: int) -> Response:
    # errors.py makes every problem+json answer, with its WWW-Authenticate challenge.
    raise AuthenticationError(
        "Send a valid token: 'Authorization: Bearer <token>' (POST /api/v1/tokens)."
    )


# The views' names for Flask-HTTPAuth's decorator and user.
token_required = auth.login_required


def current_user() -> User:
    """The user the request authenticated as (inside a `token_required` view)."""
    user: User = auth.current_user()
    return user
