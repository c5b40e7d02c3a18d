"""Browser sessions: start, read, keep alive and end them, one commit per change.

The browser holds a random token; the table holds its SHA-256, so a leaked database
cannot be replayed as cookies. Ending a session deletes its row: a copy of the cookie
stops working at the next request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update

from todoscale.config.current import app_settings
from todoscale.extensions import db
from todoscale.models import User, WebSession, utcnow
from todoscale.services.batches import delete_in_batches
from todoscale.services.tokens import announce_revoked, delete_user_tokens
from todoscale.signals import sessions_ended

# last_seen_at is written at most this often per session: the idle timeout is counted
# in minutes, so a write on every request would buy nothing.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Lifetimes:
    """How long a session may stay unused, and how long it may live at all."""

    idle: timedelta
    absolute: timedelta

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Lifetimes:
        """The lifetimes these settings configure (SESSION_IDLE_MINUTES, SESSION_MAX_DAYS)."""
        return cls(
            idle=timedelta(minutes=settings["SESSION_IDLE_MINUTES"]),
            absolute=timedelta(days=settings["SESSION_MAX_DAYS"]),
        )


def lifetimes(limits: Lifetimes | None = None) -> Lifetimes:
    """`limits`, or when None the running app's configured lifetimes."""
    return Lifetimes.of(app_settings()) if limits is None else limits


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def expires_at(record: WebSession, *, limits: Lifetimes | None = None) -> datetime:
    """When the session ends however active it is (the cookie's own expiry)."""
    return record.created_at + lifetimes(limits).absolute


def find_session(token: str, *, limits: Lifetimes | None = None) -> WebSession | None:
    """The live session this token opens, or None; an expired one is deleted on sight."""
    if not token or len(token) > 128:
        return None
    record = db.session.scalars(
        select(WebSession).where(WebSession.token_hash == _digest(token))
    ).first()
    if record is None:
        return None
    limits, now = lifetimes(limits), utcnow()
    if now - record.last_seen_at > limits.idle or now - record.created_at > limits.absolute:
        db.session.delete(record)
        db.session.commit()
        return None
    return record


def live_session_tokens(tokens: Iterable[str], *, limits: Lifetimes | None = None) -> set[str]:
    """Which of `tokens` still open a logged-in session that has not expired (few queries)."""
    by_digest = {_digest(token): token for token in tokens if token and len(token) <= 128}
    limits, now = lifetimes(limits), utcnow()
    digests, live = list(by_digest), set[str]()
    for start in range(0, len(digests), 500):
        live.update(
            db.session.scalars(
                select(WebSession.token_hash).where(
                    WebSession.token_hash.in_(digests[start : start + 500]),
                    WebSession.user_id.is_not(None),
                    WebSession.last_seen_at >= now - limits.idle,
                    WebSession.created_at >= now - limits.absolute,
                )
            )
        )
    db.session.rollback()  # a read: end the transaction, hold no snapshot
    return {by_digest[digest] for digest in live}


def _expired(now: datetime, limits: Lifetimes) -> ColumnElement[bool]:
    """The sessions unused past the idle timeout or older than the absolute lifetime."""
    return or_(
        WebSession.last_seen_at < now - limits.idle,
        WebSession.created_at < now - limits.absolute,
    )


def _purge_expired(limits: Lifetimes) -> None:
    db.session.execute(delete(WebSession).where(_expired(utcnow(), limits)))


def purge_expired_sessions(now: datetime | None = None, *, limits: Lifetimes | None = None) -> int:
    """Delete the sessions that have ended by time (beat's purge runs it); return how many."""
    return delete_in_batches(WebSession.__table__, _expired(now or utcnow(), lifetimes(limits)))


def start_session(
    user_id: str | None,
    data: str,
    *,
    replacing: str | None = None,
    limits: Lifetimes | None = None,
) -> tuple[str, WebSession]:
    """Open a new session (ending the one `replacing` names); return its token and row.

    Called at login and logout with `replacing`: the browser gets a new token, so a
    token planted or copied before the change opens nothing (no session fixation).
    """
    if replacing:
        db.session.execute(delete(WebSession).where(WebSession.token_hash == _digest(replacing)))
    _purge_expired(lifetimes(limits))  # expired rows of browsers that never came back
    token = secrets.token_urlsafe(32)
    now = utcnow()
    record = WebSession(
        token_hash=_digest(token), user_id=user_id, data=data, created_at=now, last_seen_at=now
    )
    db.session.add(record)
    db.session.commit()
    return token, record


def save_session(token: str, data: str | None) -> bool:
    """Store the session's data (None: only mark it used now); False if it ended meanwhile.

    The session may have been ended by another request (log out everywhere) while this
    one ran: then nothing is written and the caller drops the cookie.
    """
    values: dict[str, object] = {"last_seen_at": utcnow()}
    if data is not None:
        values["data"] = data
    result = db.session.execute(
        update(WebSession).where(WebSession.token_hash == _digest(token)).values(**values)
    )
    db.session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def end_session(token: str) -> None:
    """End one session (log out): its token opens nothing from now on."""
    db.session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))
    db.session.commit()


def end_user_sessions(actor: User) -> int:
    """Log out everywhere: end every session of `actor` on every device and revoke every
    API token, in one transaction; return how many sessions ended."""
    result = db.session.execute(delete(WebSession).where(WebSession.user_id == actor.id))
    delete_user_tokens(actor.id)
    db.session.commit()
    announce_revoked(end_user_sessions, actor.id)
    sessions_ended.send(end_user_sessions, user_id=actor.id)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def count_user_sessions(actor: User, *, limits: Lifetimes | None = None) -> int:
    """How many live sessions `actor` has, this one included."""
    limits, now = lifetimes(limits), utcnow()
    count = db.session.scalar(
        select(func.count()).where(
            WebSession.user_id == actor.id,
            WebSession.last_seen_at >= now - limits.idle,
            WebSession.created_at >= now - limits.absolute,
        )
    )
    return int(count or 0)
