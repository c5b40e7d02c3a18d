"""tasks.reminders: the task functions, and a real worker with beat sending reminders once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.smtp import SmtpServer
from tests.workers import wait_for
from todoscale.extensions import db
from todoscale.mail import Mailer, RecordingMailer
from todoscale.models import Notification, utcnow
from todoscale.services import lists, profile, todos
from todoscale.services.accounts import register_user
from todoscale.tasks import SEND_DUE_REMINDERS
from todoscale.tasks import reminders as tasks


@pytest.fixture
def shared(ctx):
    """Olive's list shared with Mia and Max, with two todos coming due in five minutes."""
    olive = register_user("olive", "olive@example.com", "long enough pw")
    for name in ("mia", "max"):
        register_user(name, f"{name}@example.com", "long enough pw")
    list_id = lists.create_list(olive, "Shared").todo_list.id
    lists.share_list(olive, list_id, username="mia")
    lists.share_list(olive, list_id, username="max")
    soon = utcnow() + timedelta(minutes=5)
    ids = [todos.create_todo(olive, title=t, list_id=list_id, due_at=soon).id for t in "AB"]
    return {"olive": olive, "list_id": list_id, "todo_ids": ids}


def _notifications() -> list[tuple[str, str]]:
    db.session.expire_all()
    return sorted(db.session.execute(select(Notification.user_id, Notification.todo_id)).tuples())


def test_the_sweep_task_calls_the_service(shared):
    assert tasks.send_due_reminders.name == SEND_DUE_REMINDERS
    assert tasks.send_due_reminders.run() == 6
    assert tasks.send_due_reminders.run() == 0
    assert len(_notifications()) == 6


def test_the_email_task_sends_once_and_only_with_a_mailer(shared, app, monkeypatch):
    tasks.send_due_reminders.run()
    notification_id = db.session.scalars(select(Notification.id)).first()
    assert tasks.send_reminder_email.run(notification_id) is False  # no SMTP_URL: no mailer
    mailer = RecordingMailer()
    monkeypatch.setitem(app.extensions, "mailer", mailer)
    assert tasks.send_reminder_email.run(notification_id) is True
    assert tasks.send_reminder_email.run(notification_id) is False
    assert len(mailer.sent) == 1


def test_reminder_emails_reach_a_real_smtp_server_in_each_readers_language(
    shared, app, smtp, monkeypatch
):
    """A title with a line break crashed the task (a Subject cannot hold one); the link led
    to the JSON API; every email was in English and UTC."""
    olive = shared["olive"]
    profile.set_locale(olive, "zh_Hans")
    profile.set_time_zone(olive, "Europe/Paris")
    todos.create_todo(
        olive,
        title="Pay rent\r\nBcc: everyone@example.com",
        list_id=shared["list_id"],
        due_at=utcnow() + timedelta(minutes=3),
    )
    tasks.send_due_reminders.run()
    monkeypatch.setitem(app.extensions, "mailer", Mailer(smtp.url(), "todoscale@example.com"))

    for notification_id in db.session.scalars(select(Notification.id)).all():
        assert tasks.send_reminder_email.run(notification_id) is True

    rent = [m for m in smtp.messages if "Pay rent" in m.message["Subject"]]
    assert sorted(m.rcpt_to[0] for m in rent) == [
        "max@example.com",
        "mia@example.com",
        "olive@example.com",
    ]
    assert all(m.message["Bcc"] is None and len(m.rcpt_to) == 1 for m in rent)
    by_reader = {m.rcpt_to[0]: m.message for m in rent}
    assert by_reader["mia@example.com"]["Subject"] == (
        "Reminder: Pay rent Bcc: everyone@example.com"
    )
    assert by_reader["olive@example.com"]["Subject"].startswith("提醒")
    assert "法国时间" in by_reader["olive@example.com"].get_content()
    assert "(Coordinated Universal Time)" in by_reader["mia@example.com"].get_content()
    for message in by_reader.values():
        assert f"/lists/{shared['list_id']}" in message.get_content()
        assert "/api/" not in message.get_content()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    try:
        yield server
    finally:
        server.stop()


def _count() -> int:
    db.session.expire_all()
    return int(db.session.scalar(select(func.count()).select_from(Notification)) or 0)


@pytest.mark.services
def test_a_worker_with_beat_reminds_each_member_once_across_ticks(shared, start_worker, smtp):
    # The embedded SQLite queue hands out about one message a second: generous timeouts.
    worker = start_worker(
        beat=True, reminder_interval_seconds=1.0, env={"TODOSCALE_SMTP_URL": smtp.url()}
    )
    wait_for(lambda: _count() >= 6, timeout=60, message="no reminders from the worker")
    wait_for(lambda: len(smtp.messages) >= 6, timeout=60, message="no reminder emails")
    # A todo coming due later in the run gets its own reminders, on a later tick.
    olive = shared["olive"]
    later = todos.create_todo(  # a line break in the title crashed the email task
        olive, title="C\nD", list_id=shared["list_id"], due_at=utcnow() + timedelta(minutes=1)
    )
    wait_for(lambda: _count() >= 9, timeout=60, message="the new todo was not reminded")
    wait_for(lambda: len(smtp.messages) >= 9, timeout=60, message="missing reminder emails")
    tick = "Sending due task send-due-reminders"
    ticks_before = worker.log().count(tick)
    time.sleep(3.5)  # more ticks, nothing new to say
    assert worker.log().count(tick) >= ticks_before + 3, worker.log()[-3000:]
    member_ids = {
        user_id for (user_id,) in db.session.execute(select(Notification.user_id).distinct())
    }
    assert len(member_ids) == 3
    assert _notifications() == sorted(
        (user_id, todo_id) for user_id in member_ids for todo_id in [*shared["todo_ids"], later.id]
    )
    recipients = sorted((tuple(m.rcpt_to), m.message["Subject"]) for m in smtp.messages)
    assert recipients == sorted(
        ((f"{name}@example.com",), f"Reminder: {title}")
        for name in ("olive", "mia", "max")
        for title in ("A", "B", "C D")
    )
    link = f"Open the list: http://localhost:8000/lists/{shared['list_id']}"
    assert all(link in m.message.get_content() for m in smtp.messages)
    assert "Traceback" not in worker.log(), worker.log()[-3000:]


def test_a_reminder_emails_send_asks_for_no_result(shared, app, monkeypatch):
    """Like a job's send: without ignore_result, Celery subscribes the sending process to a
    result (on Redis) that nobody reads, one more subscription per email."""
    sent: list[dict] = []
    celery_app = app.extensions["celery"]
    monkeypatch.setattr(celery_app, "send_task", lambda name, **options: sent.append(options))
    monkeypatch.setitem(app.extensions, "mailer", RecordingMailer())
    tasks.connect_receivers()
    tasks.send_due_reminders.run()
    assert len(sent) == 6
    assert all(options.get("ignore_result") is True for options in sent)
