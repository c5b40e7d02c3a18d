"""A user's own settings: language, time zone and password."""

from __future__ import annotations

from sqlalchemy import delete

from todoscale.exceptions import AuthenticationError, ValidationError
from todoscale.extensions import db
from todoscale.models import User, WebSession
from todoscale.services.accounts import authenticate, hash_password
from todoscale.services.rules import Message, check_locale, check_password, check_time_zone
from todoscale.services.tokens import announce_revoked, delete_user_tokens
from todoscale.signals import sessions_ended


def set_locale(actor: User, locale: str | None) -> User:
    """Save the language the web UI speaks to `actor`; None follows the browser again."""
    actor.locale = check_locale(locale) if locale else None
    db.session.commit()  # bumps the user's own scope: their token lookups cache the row
    return actor


def set_time_zone(actor: User, time_zone: str | None) -> User:
    """Save the time zone the web UI shows `actor` times in; None follows the browser again."""
    actor.time_zone = check_time_zone(time_zone) if time_zone else None
    db.session.commit()  # bumps the user's own scope: their token lookups cache the row
    return actor


def change_password(actor: User, current_password: str, new_password: str) -> User:
    """Set a new password after checking the current one; end every browser session and
    revoke every API token, in the same transaction.

    Whoever held a session or a token (perhaps the reason for the change) is shut out at
    once, and their Socket.IO connections close at the next re-check.
    """
    check_password(new_password, "new_password")
    try:
        authenticate(actor.username, current_password)
    except AuthenticationError as exc:
        raise ValidationError(
            {"current_password": [Message("is not your current password")]}
        ) from exc
    actor.password_hash = hash_password(new_password)
    db.session.execute(delete(WebSession).where(WebSession.user_id == actor.id))
    delete_user_tokens(actor.id)
    db.session.commit()
    announce_revoked(change_password, actor.id)
    sessions_ended.send(change_password, user_id=actor.id)
    return actor
