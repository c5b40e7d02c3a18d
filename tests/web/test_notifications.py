"""web/notifications.py: the header's badge, the notifications page, marking read, in Chinese."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from todoscale.services.reminders import send_due_reminders

DUE = "2026-12-24"
JUST_BEFORE = datetime(2026, 12, 23, 23, 50, tzinfo=UTC)
_BADGE = re.compile(r'id="notification-count" data-count="(\d+)">(\d+)<')


def _badge(user) -> int:
    match = _BADGE.search(user.text("/profile"))
    assert match, "no badge in the header"
    assert match.group(1) == match.group(2)
    return int(match.group(1))


@pytest.fixture
def reminded(app, ann, ben):
    """Ann's list shared with Ben, with two todos due on Christmas Eve, and their reminders."""
    family = ann.new_list("Family")
    ann.post(f"/lists/{family}/members", {"username": "ben"})
    ann.add_todo(family, "Buy the tree", due_at=DUE)
    ann.add_todo(family, "Wrap <presents>", due_at=DUE)
    ann.add_todo(ann.inbox_id(), "Not shared", due_at=DUE)
    with app.app_context():
        assert send_due_reminders(JUST_BEFORE) == 5
    return family


def test_the_badge_counts_unread_notifications(ann, ben, reminded):
    assert _badge(ann) == 3
    assert _badge(ben) == 2


def test_the_badge_shows_zero_and_no_page_has_it_when_logged_out(app, ann):
    assert _badge(ann) == 0
    assert "notification-count" not in app.test_client().get("/login").get_data(as_text=True)


def test_the_page_lists_notifications_newest_first_escaped(ann, reminded):
    html = ann.text("/notifications")
    titles = re.findall(r'class="link-button">([^<]*)<', html)
    assert sorted(titles) == ["Buy the tree", "Not shared", "Wrap &lt;presents&gt;"]
    assert html.count('class="notification is-unread"') == 3
    assert "Mark all as read" in html
    assert "Due 12/24/26, 12:00" in html


def test_opening_one_marks_it_read_and_goes_to_its_list(ann, ben, reminded):
    html = ben.text("/notifications")
    notification_id = re.search(r'id="notification-([0-9a-f]+)"', html).group(1)
    response = ben.post(f"/notifications/{notification_id}/open")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/lists/{reminded}"
    assert _badge(ben) == 1
    assert ben.text("/notifications").count("is-unread") == 1
    # Someone else's notification is not found, and changes nothing.
    assert ann.post(f"/notifications/{notification_id}/open").status_code == 404
    assert _badge(ann) == 3


def test_mark_all_read(ann, ben, reminded):
    response = ann.post("/notifications/read", follow_redirects=True)
    assert response.status_code == 200
    assert "All notifications marked as read." in response.get_data(as_text=True)
    assert _badge(ann) == 0
    assert _badge(ben) == 2


def test_posting_without_a_csrf_token_is_refused(ann, reminded):
    assert ann.client.post("/notifications/read").status_code == 400
    assert _badge(ann) == 3


def test_the_page_pages_and_needs_a_login(app, ann):
    assert app.test_client().get("/notifications").status_code == 302
    inbox = ann.inbox_id()
    for n in range(25):
        ann.add_todo(inbox, f"t{n}", due_at=DUE)
    with app.app_context():
        assert send_due_reminders(JUST_BEFORE) == 25
    first = ann.text("/notifications")
    assert first.count('class="link-button"') == 20
    older = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = ann.text(older)
    assert second.count('class="link-button"') == 5
    assert 'rel="next"' not in second
    assert ann.get("/notifications?cursor=bogus").status_code == 400


def test_the_page_in_chinese(ann, reminded):
    ann.post("/profile/language", {"locale": "zh_Hans"})
    html = ann.text("/notifications")
    assert "通知" in html
    assert "全部标为已读" in html
    assert "提醒于" in html
    ann.post("/notifications/read")
    assert "所有通知均已标为已读。" in ann.text("/notifications")
