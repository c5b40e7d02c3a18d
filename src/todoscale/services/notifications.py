"""In-app notifications: a user's reminders, newest first, read and unread, and their emails."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update

from todoscale.config.current import app_settings
from todoscale.exceptions import NotFoundError
from todoscale.extensions import db
from todoscale.mail import Sender
from todoscale.models import Notification, User, utcnow
from todoscale.services.batches import delete_in_batches
from todoscale.services.pagination import decode_cursor, encode_cursor


@dataclass(frozen=True)
class NotificationPage:
    """One page of a user's notifications, newest first, and the cursor of the next page."""

    items: Sequence[Notification]
    next_cursor: str | None


def list_notifications(
    actor: User, *, limit: int = 20, cursor: str | None = None
) -> NotificationPage:
    """A page of `actor`'s notifications, newest first (keyset-paged like todos)."""
    query = select(Notification).where(Notification.user_id == actor.id)
    if cursor:
        created_at, item_id = decode_cursor(cursor)
        query = query.where(
            or_(
                Notification.created_at < created_at,
                and_(Notification.created_at == created_at, Notification.id < item_id),
            )
        )
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit + 1)
    items = list(db.session.scalars(query))
    if len(items) <= limit:
        return NotificationPage(items, None)
    last = items[limit - 1]
    return NotificationPage(items[:limit], encode_cursor(last.created_at, last.id))


def unread_count(actor: User) -> int:
    """How many of `actor`'s notifications are unread."""
    count = db.session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == actor.id, Notification.read_at.is_(None))
    )
    return int(count or 0)


def mark_read(actor: User, notification_id: str) -> Notification:
    """Mark one of `actor`'s notifications read (again is harmless); NotFoundError if not theirs."""
    notification = db.session.scalars(
        select(Notification).where(
            Notification.id == notification_id, Notification.user_id == actor.id
        )
    ).first()
    if notification is None:
        raise NotFoundError("No such notification.")
    if notification.read_at is None:
        notification.read_at = utcnow()
        db.session.commit()
    return notification


def mark_all_read(actor: User) -> int:
    """Mark every unread notification of `actor` read; return how many were unread."""
    changed = db.session.execute(
        update(Notification)
        .where(Notification.user_id == actor.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return int(changed.rowcount or 0)  # type: ignore[attr-defined]


def purge_old_notifications(now: datetime | None = None, *, keep: timedelta | None = None) -> int:
    """Delete notifications older than `keep` (by default NOTIFICATION_RETENTION_DAYS), read
    or not (beat's purge runs it); return how many."""
    if keep is None:
        keep = timedelta(days=app_settings()["NOTIFICATION_RETENTION_DAYS"])
    table = Notification.__table__
    return delete_in_batches(table, table.c.created_at < (now or utcnow()) - keep)


# Words an email for its reader: (notification, its user) -> (subject, body).
Compose = Callable[[Notification, User], tuple[str, str]]


def email_notification(notification_id: str, mailer: Sender, compose: Compose) -> bool:
    """Email a reminder to its user once, worded by `compose`; False when it was already
    emailed (or is gone).

    Claimed by a conditional UPDATE of `emailed_at`, committed BEFORE talking to the mail
    server: holding the transaction open through SMTP would hold SQLite's write lock for as
    long as the server takes. A second caller finds nothing to claim; a failed send gives the
    claim back for a retry. A worker killed between claim and send loses that one email
    (at most once): the in-app notification is the one that must not be lost.
    """
    row = db.session.execute(
        select(Notification, User)
        .join(User, User.id == Notification.user_id)
        .where(Notification.id == notification_id)
    ).first()
    if row is None or row[0].emailed_at is not None:
        db.session.rollback()
        return False
    notification, user = row
    claimed_at = utcnow()
    claimed = db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.emailed_at.is_(None))
        .values(emailed_at=claimed_at)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        db.session.rollback()
        return False
    subject, body = compose(notification, user)
    email = user.email
    db.session.commit()
    try:
        mailer.send(email, subject, body)
    except Exception:
        db.session.execute(  # not sent: give the claim back for the retry
            update(Notification)
            .where(Notification.id == notification_id, Notification.emailed_at == claimed_at)
            .values(emailed_at=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        raise
    return True
