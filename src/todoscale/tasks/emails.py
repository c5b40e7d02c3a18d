"""The reminder email's words: in its reader's language and time zone, linking the web page
of the list (a person opens it in a browser; the API would answer 401)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytz
from babel.dates import format_datetime
from flask import current_app
from flask_babel import force_locale, gettext

from todoscale.api.schemas import public_url_default
from todoscale.models import Notification, User
from todoscale.services.rules import LOCALES
from todoscale.web.zones import UTC_NAME, zone_label


def web_url(endpoint: str, **values: str) -> str:
    """The absolute URL of a web page, built outside any request from TODOSCALE_PUBLIC_URL."""
    public = urlsplit(current_app.config["PUBLIC_URL"] or public_url_default())
    adapter = current_app.url_map.bind(
        public.netloc, script_name=public.path or "/", url_scheme=public.scheme
    )
    return adapter.build(endpoint, values, force_external=True)


def reminder_email(notification: Notification, user: User) -> tuple[str, str]:
    """The subject and plain-text body of a reminder to `user`, in their language and zone."""
    locale = user.locale or LOCALES[0]  # no choice saved: the web UI's default language
    zone = user.time_zone or UTC_NAME
    with force_locale(locale):
        subject = gettext("Reminder: %(title)s", title=notification.title)
        if notification.due_at is None:
            lines = [gettext("“%(title)s” is due soon.", title=notification.title)]
        else:
            when = format_datetime(
                notification.due_at, "medium", tzinfo=pytz.timezone(zone), locale=locale
            )
            lines = [
                gettext(
                    "“%(title)s” is due on %(when)s (%(zone)s).",
                    title=notification.title,
                    when=when,
                    zone=zone_label(zone),
                )
            ]
        if notification.list_id:
            link = web_url("web.todos.show", list_id=notification.list_id)
            lines += ["", gettext("Open the list: %(link)s", link=link)]
        lines += ["", "— todoscale"]
    return subject, "\n".join(lines)
