"""A user's API tokens: listing them, revoking one or every one, and when each was last used.

Issuing and looking tokens up is `services.accounts`' (the hot path of every API request).
"""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import delete, or_, select, update

from todoscale.exceptions import NotFoundError
from todoscale.extensions import db
from todoscale.models import ApiToken, User, utcnow
from todoscale.signals import tokens_revoked

_TOKENS = ApiToken.__table__
# Entries kept before the map is started afresh (costs at most one extra write per token).
_NOTED_MAX = 10_000


def list_tokens(actor: User) -> list[ApiToken]:
    """`actor`'s live tokens, newest first."""
    return list(
        db.session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == actor.id, ApiToken.expires_at > utcnow())
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        )
    )


def delete_user_tokens(user_id: str) -> None:
    """Delete every token of the user, in the caller's transaction (it commits and then
    calls `announce_revoked`)."""
    db.session.execute(delete(ApiToken).where(ApiToken.user_id == user_id))


def announce_revoked(sender: object, user_id: str) -> None:
    """After the commit that deleted tokens (it bumped their owner's cache scope: no
    process accepts them from its cache any longer), whoever listens hears of it
    (Socket.IO's re-check closes their connections)."""
    tokens_revoked.send(sender, user_id=user_id)


def revoke_user_tokens(actor: User) -> None:
    """Revoke every token of `actor` at once, the one in use too."""
    delete_user_tokens(actor.id)
    db.session.commit()
    announce_revoked(revoke_user_tokens, actor.id)


def revoke_user_token(actor: User, token_id: str) -> None:
    """Revoke one of `actor`'s tokens by its id (not the secret: the user no longer holds
    it); NotFoundError for any other id."""
    result = db.session.execute(
        delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == actor.id)
    )
    db.session.commit()
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFoundError("No such token.")
    announce_revoked(revoke_user_token, actor.id)


def note_token_used(token_id: str, *, every: float, noted: dict[str, float]) -> None:
    """Record that a token is being used: coarsely, never on every request of the read path.

    Each process writes a token's `last_used_at` at most once per `every` seconds
    (TOKEN_LAST_USED_SECONDS), in a short transaction of its own (never the request's), and
    the UPDATE is conditional on the stored time being that old, so several processes
    together write about as rarely. The time shown is therefore at most that many seconds
    behind the last use. `noted` is this process's memory of its writes (token id ->
    `time.monotonic()` of the last), kept by the caller from one request to the next.
    """
    now = time.monotonic()
    last = noted.get(token_id)
    if last is not None and now - last < every:
        return
    if len(noted) >= _NOTED_MAX:
        noted.clear()
    noted[token_id] = now
    moment = utcnow()
    with db.engine.begin() as connection:
        connection.execute(
            update(_TOKENS)
            .where(
                _TOKENS.c.id == token_id,
                or_(
                    _TOKENS.c.last_used_at.is_(None),
                    _TOKENS.c.last_used_at < moment - timedelta(seconds=every),
                ),
            )
            .values(last_used_at=moment)
        )
