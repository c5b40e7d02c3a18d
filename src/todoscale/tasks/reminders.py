"""Reminder tasks: beat's sweep for todos coming due, and one email per notification."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import shared_task
from flask import current_app

from todoscale.mail import MailError
from todoscale.models import Notification
from todoscale.services import reminders
from todoscale.services.notifications import email_notification
from todoscale.signals import notifications_created
from todoscale.tasks import SEND_DUE_REMINDERS

logger = logging.getLogger(__name__)

SEND_REMINDER_EMAIL = "todoscale.send_reminder_email"


@shared_task(name=SEND_DUE_REMINDERS)
def send_due_reminders() -> int:
    """Notify the members of every list whose todos are coming due (beat runs it)."""
    return reminders.send_due_reminders()


@shared_task(
    name=SEND_REMINDER_EMAIL,
    autoretry_for=(MailError,),
    retry_backoff=True,
    max_retries=5,
)
def send_reminder_email(notification_id: str) -> bool:
    """Email one reminder to its user, once however often the task runs."""
    mailer = current_app.extensions.get("mailer")
    if mailer is None:
        return False
    # Here: the email's words import Flask-Babel, Babel and the web's time zones, which a
    # worker without a mailer never needs (core.create_worker_app).
    from todoscale.tasks.emails import reminder_email

    return email_notification(notification_id, mailer, reminder_email)


def connect_receivers() -> None:
    """Enqueue reminder emails after reminders commit (connecting again is a no-op)."""
    notifications_created.connect(_enqueue_emails, weak=False)


def _enqueue_emails(sender: object, *, notifications: Sequence[Notification], **_: Any) -> None:
    """After commit: one email task per notification, when this app has a mailer."""
    if current_app.extensions.get("mailer") is None:
        return
    celery_app = current_app.extensions["celery"]
    for notification in notifications:
        try:
            celery_app.send_task(SEND_REMINDER_EMAIL, args=[notification.id], ignore_result=True)
        except Exception:  # process boundary: the notification is committed and shown in-app
            logger.exception("could not enqueue the reminder email of %s", notification.id)
