"""services.notifications: a user's notifications, read state, and the reminder email sent once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.smtp import SmtpServer
from todoscale.exceptions import BadRequestError, NotFoundError
from todoscale.extensions import db
from todoscale.mail import Mailer, MailError, RecordingMailer
from todoscale.models import Notification, User
from todoscale.services import lists, notifications, todos
from todoscale.services.accounts import register_user
from todoscale.services.reminders import send_due_reminders

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.fixture
def people(ctx):
    """Olive shares a list with Mia; each has reminders of three todos of it."""
    olive, mia = (
        register_user(name, f"{name}@example.com", "long enough pw") for name in ("olive", "mia")
    )
    shared = lists.create_list(olive, "Shared").todo_list.id
    lists.share_list(olive, shared, username="mia")
    for n in range(3):
        todos.create_todo(
            olive, title=f"todo {n}", list_id=shared, due_at=NOW + timedelta(minutes=n + 1)
        )
        send_due_reminders(NOW + timedelta(seconds=n))  # one sweep each: distinct created_at
    return {"olive": olive, "mia": mia, "shared": shared}


def _mine(user) -> list[Notification]:
    return list(notifications.list_notifications(user, limit=100).items)


def test_a_user_lists_their_own_notifications_newest_first_by_pages(people):
    olive, mia = people["olive"], people["mia"]
    first = notifications.list_notifications(mia, limit=2)
    assert [n.title for n in first.items] == ["todo 2", "todo 1"]
    assert {n.user_id for n in first.items} == {mia.id}
    second = notifications.list_notifications(mia, limit=2, cursor=first.next_cursor)
    assert [n.title for n in second.items] == ["todo 0"]
    assert second.next_cursor is None
    assert {n.id for n in _mine(olive)}.isdisjoint({n.id for n in _mine(mia)})
    with pytest.raises(BadRequestError):
        notifications.list_notifications(mia, cursor="garbage")


def test_unread_count_and_marking_read(people):
    olive, mia = people["olive"], people["mia"]
    assert notifications.unread_count(mia) == 3
    newest = _mine(mia)[0]
    read = notifications.mark_read(mia, newest.id)
    assert read.read_at is not None
    again = notifications.mark_read(mia, newest.id)
    assert again.read_at == read.read_at
    assert notifications.unread_count(mia) == 2
    assert notifications.unread_count(olive) == 3
    with pytest.raises(NotFoundError):
        notifications.mark_read(olive, newest.id)  # not hers
    assert notifications.mark_all_read(mia) == 2
    assert notifications.unread_count(mia) == 0
    assert notifications.mark_all_read(mia) == 0
    assert notifications.unread_count(olive) == 3


def _compose(notification: Notification, user: User) -> tuple[str, str]:
    """The words of a test email (the real ones: tests/tasks/test_emails.py)."""
    return f"Reminder: {notification.title}", f"for {user.username}: {notification.list_id}"


def test_a_reminder_is_emailed_once(people):
    mailer = RecordingMailer()
    notification = _mine(people["mia"])[0]
    assert notifications.email_notification(notification.id, mailer, _compose)
    assert not notifications.email_notification(notification.id, mailer, _compose)
    [message] = mailer.sent
    assert message["To"] == "mia@example.com"
    assert message["Subject"] == "Reminder: todo 2"
    assert message.get_content().strip() == f"for mia: {people['shared']}"
    db.session.expire_all()
    assert db.session.get(Notification, notification.id).emailed_at is not None
    assert not notifications.email_notification("no-such-id", mailer, _compose)


class _Failing(RecordingMailer):
    def send(self, to, subject, body):
        raise MailError("the server is down")


def test_a_failed_send_leaves_the_reminder_unsent_for_the_retry(people):
    notification_id = _mine(people["mia"])[0].id
    with pytest.raises(MailError):
        notifications.email_notification(notification_id, _Failing(), _compose)
    db.session.expire_all()
    assert db.session.get(Notification, notification_id).emailed_at is None
    mailer = RecordingMailer()
    assert notifications.email_notification(notification_id, mailer, _compose)
    assert len(mailer.sent) == 1


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()  # no login: without TLS a mailer never sends a password
    try:
        yield server
    finally:
        server.stop()


def test_reminder_emails_go_through_a_real_smtp_server(people, smtp):
    mailer = Mailer(smtp.url(), "todoscale@example.com")
    ids = [n.id for n in _mine(people["olive"])]
    for notification_id in ids + ids:
        notifications.email_notification(notification_id, mailer, _compose)
    assert sorted(m.message["Subject"] for m in smtp.messages) == [
        "Reminder: todo 0",
        "Reminder: todo 1",
        "Reminder: todo 2",
    ]
    assert {tuple(m.rcpt_to) for m in smtp.messages} == {("olive@example.com",)}
    emailed = db.session.scalars(
        select(Notification.emailed_at).where(Notification.id.in_(ids))
    ).all()
    assert all(emailed)
