"""web/profile.py: language, password change, logging out everywhere."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.web.conftest import COOKIE, PASSWORD, csrf_token
from todoscale.extensions import db
from todoscale.models import ApiToken
from todoscale.services import accounts


def test_profile_page(ann):
    html = ann.text("/profile")
    assert "Logged in as ann (ann@example.com)" in html
    assert "You are logged in in 1 browser." in html


def test_language_choice_is_saved_and_wins_over_the_browser(ann):
    response = ann.post("/profile/language", {"locale": "zh_Hans"}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert 'lang="zh-Hans"' in html and "语言已保存。" in html
    assert "收件箱" in ann.text("/", headers={"Accept-Language": "en"})
    ann.post("/profile/language", {"locale": ""})
    assert "收件箱" in ann.text("/", headers={"Accept-Language": "zh-CN,en;q=0.5"})
    assert "Inbox" in ann.text("/", headers={"Accept-Language": "fr"})


def test_an_unknown_language_is_refused(ann):
    response = ann.post("/profile/language", {"locale": "xx"})
    assert response.status_code == 422
    assert 'id="locale-error"' in response.get_data(as_text=True)


def test_password_change_errors(ann):
    response = ann.post(
        "/profile/password",
        {
            "current_password": "wrong",
            "new_password": "a new password",
            "confirm": "a new password",
        },
    )
    assert response.status_code == 422
    assert "is not your current password" in response.get_data(as_text=True)
    response = ann.post(
        "/profile/password",
        {"current_password": PASSWORD, "new_password": "short", "confirm": "short"},
    )
    assert "must be at least 8 characters" in response.get_data(as_text=True)
    response = ann.post(
        "/profile/password",
        {"current_password": PASSWORD, "new_password": "Password1", "confirm": "Password1"},
    )
    assert "is one of the most common passwords" in response.get_data(as_text=True)
    response = ann.post(
        "/profile/password",
        {"current_password": PASSWORD, "new_password": "a new password", "confirm": "other"},
    )
    assert "The two new passwords differ." in response.get_data(as_text=True)
    ann.post("/logout")
    assert ann.log_in().status_code == 302  # the old password still works


def test_password_change_ends_every_session(app, ann):
    other = app.test_client()  # ann's second browser
    page = other.get("/login")
    other.post(
        "/login", data={"csrf_token": csrf_token(page), "username": "ann", "password": PASSWORD}
    )
    assert other.get("/").status_code == 200
    old = ann.cookie()
    response = ann.post(
        "/profile/password",
        {
            "current_password": PASSWORD,
            "new_password": "a new password",
            "confirm": "a new password",
        },
    )
    assert response.headers["Location"] == "/login"
    assert ann.get("/").status_code == 302
    ann.client.set_cookie(COOKIE, old)
    assert ann.get("/").status_code == 302
    assert other.get("/").status_code == 302
    assert ann.log_in().status_code == 422
    assert ann.log_in(password="a new password").status_code == 302


def test_log_out_everywhere(app, ann):
    second = app.test_client()
    page = second.get("/login")
    second.post(
        "/login", data={"csrf_token": csrf_token(page), "username": "ann", "password": PASSWORD}
    )
    assert second.get("/").status_code == 200
    assert "You are logged in in 2 browsers." in ann.text("/profile")
    response = ann.post("/profile/sessions", follow_redirects=True)
    assert "You have logged out everywhere." in response.get_data(as_text=True)
    assert second.get("/").status_code == 302
    assert ann.get("/").status_code == 302


def test_time_zone_choice_is_saved_and_wins_over_the_browser(ann):
    ann.client.set_cookie("todoscale_tz", "Europe/Paris")
    html = ann.text("/profile")
    assert '<option selected value="">As my browser says (France Time)</option>' in html
    assert '<optgroup label="Asia">' in html and ">China (Shanghai) Time</option>" in html

    response = ann.post("/profile/time-zone", {"time_zone": "Asia/Tokyo"}, follow_redirects=True)

    html = response.get_data(as_text=True)
    assert "Time zone saved." in html and 'data-time-zone="Asia/Tokyo"' in html
    assert '<option selected value="Asia/Tokyo">Japan Time</option>' in html
    ann.post("/profile/time-zone", {"time_zone": ""})
    assert 'data-time-zone="Europe/Paris"' in ann.text("/profile")


def test_an_unknown_time_zone_is_refused(ann, row_counts):
    response = ann.post("/profile/time-zone", {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 422
    assert "must be a time zone such as Asia/Shanghai" in response.get_data(as_text=True)
    assert 'data-time-zone="UTC"' in ann.text("/")


def test_time_zones_are_named_in_the_users_language(ann):
    ann.post("/profile/language", {"locale": "zh_Hans"})
    html = ann.text("/profile")
    assert ">中国\uff08上海\uff09时间</option>" in html  # Babel's name, full-width brackets
    assert '<optgroup label="亚洲">' in html
    assert "时间以协调世界时显示" in html


def _works(app, token: str) -> bool:
    response = app.test_client().get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code == 200


def test_the_profile_lists_the_tokens_and_revokes_one(app, ann, ben):
    assert "You have no API tokens." in ann.text("/profile")
    kept, revoked = ann.api_token(), ann.api_token()
    assert _works(app, kept)
    html = ann.text("/profile")
    rows = re.findall(r'<tr id="token-([0-9a-f]+)">(.*?)</tr>', html, re.S)
    assert len(rows) == 2
    assert sum("Not yet" in row for _id, row in rows) == 1  # the newest, never used
    assert html.count('aria-label="Revoke the token created ') == 2
    with app.app_context():
        ids = {
            digest: token_id
            for token_id, digest in db.session.execute(select(ApiToken.id, ApiToken.token_hash))
        }
    revoked_id = ids[accounts._digest(revoked)]

    assert ben.post(f"/profile/tokens/{revoked_id}/revoke").status_code == 404  # not his
    assert _works(app, revoked)
    response = ann.post(f"/profile/tokens/{revoked_id}/revoke", follow_redirects=True)

    assert "The token is revoked: it no longer works anywhere." in response.get_data(as_text=True)
    assert not _works(app, revoked)
    assert _works(app, kept)
    assert f'id="token-{revoked_id}"' not in ann.text("/profile")


def test_a_password_change_revokes_every_token(app, ann, ben):
    """Tokens survived a password change: whoever had stolen one kept the account."""
    token, bystander = ann.api_token(), ben.api_token()
    response = ann.post(
        "/profile/password",
        {
            "current_password": PASSWORD,
            "new_password": "a new password",
            "confirm": "a new password",
        },
    )
    assert response.status_code == 302
    assert not _works(app, token)
    assert _works(app, bystander)


def test_logging_out_everywhere_revokes_every_token(app, ann, ben):
    token, bystander = ann.api_token(), ben.api_token()
    assert _works(app, token)
    ann.post("/profile/sessions")
    assert not _works(app, token)
    assert _works(app, bystander)
