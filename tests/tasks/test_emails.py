"""tasks.emails: a reminder's words, in its reader's language and time zone, and its link."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from todoscale.extensions import db
from todoscale.models import Notification
from todoscale.services import lists, profile, todos
from todoscale.services.accounts import register_user
from todoscale.services.reminders import send_due_reminders
from todoscale.tasks.emails import reminder_email, web_url

DUE = datetime(2026, 11, 22, 8, 3, tzinfo=UTC)


@pytest.fixture
def reminded(ctx):
    """Olive (English, no zone chosen) and Mei (Chinese, Shanghai) reminded of one todo."""
    olive = register_user("olive", "olive@example.com", "long enough pw")
    mei = register_user("mei", "mei@example.com", "long enough pw")
    profile.set_locale(mei, "zh_Hans")
    profile.set_time_zone(mei, "Asia/Shanghai")
    shared = lists.create_list(olive, "Rent").todo_list.id
    lists.share_list(olive, shared, username="mei")
    todos.create_todo(olive, title="Pay rent", list_id=shared, due_at=DUE)
    send_due_reminders(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    found = db.session.execute(select(Notification).order_by(Notification.user_id)).scalars()
    by_user = {notification.user_id: notification for notification in found}
    return {"olive": (by_user[olive.id], olive), "mei": (by_user[mei.id], mei), "list": shared}


def test_a_reminder_is_in_english_and_utc_without_a_choice(reminded, app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://todo.example.com/app/")

    subject, body = reminder_email(*reminded["olive"])

    assert subject == "Reminder: Pay rent"
    assert body.splitlines() == [
        "“Pay rent” is due on Nov 22, 2026, 8:03:00\u202fAM (Coordinated Universal Time).",
        "",
        f"Open the list: https://todo.example.com/app/lists/{reminded['list']}",
        "",
        "— todoscale",
    ]


def test_a_reminder_is_in_the_users_language_and_time_zone(reminded):
    subject, body = reminder_email(*reminded["mei"])

    # (\uff1a, \uff08, \uff09: Chinese full-width colon and brackets)
    assert subject == "提醒\uff1aPay rent"
    assert (
        "“Pay rent”将于 2026年11月22日 16:03:00 截止\uff08中国\uff08上海\uff09时间\uff09。" in body
    )
    assert f"打开清单\uff1ahttp://localhost:8000/lists/{reminded['list']}" in body


def test_the_link_opens_the_web_page_not_the_api(reminded, client):
    """It pointed at /api/v1/lists/<id>, which a browser is answered 401 for."""
    link = urlsplit(web_url("web.todos.show", list_id=reminded["list"]))

    response = client.get(link.path)

    assert link.path == f"/lists/{reminded['list']}"
    assert response.status_code == 302  # to the login page, then back to the list
    assert response.headers["Location"] == f"/login?next={link.path}"
