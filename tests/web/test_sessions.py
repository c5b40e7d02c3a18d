"""auth/sessions.py and services/sessions.py: what the cookie holds, and when it stops working."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select, update

from todoscale.extensions import db
from todoscale.models import WebSession
from todoscale.services import sessions


def _rows(app) -> list[WebSession]:
    with app.app_context():
        rows = list(db.session.scalars(select(WebSession)))
        db.session.expunge_all()
        return rows


def _age(app, **changes) -> None:
    with app.app_context():
        for row in db.session.scalars(select(WebSession)):
            for column, delta in changes.items():
                setattr(row, column, getattr(row, column) - delta)
        db.session.commit()


def test_the_cookie_is_only_an_opaque_token_stored_hashed(app, ann):
    token = ann.cookie()
    assert token and "." not in token and len(token) >= 40
    rows = [row for row in _rows(app) if row.user_id is not None]
    assert len(rows) == 1
    assert rows[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in rows[0].data


def test_pages_without_forms_store_no_anonymous_session(app, client):
    client.get("/static/app.css").close()
    client.get("/healthz")
    client.get("/api/v1/lists")
    assert _rows(app) == []
    assert client.get_cookie("todoscale_session") is None


def test_idle_sessions_end(app, ann):
    _age(app, last_seen_at=timedelta(minutes=119))
    assert ann.get("/").status_code == 200  # and the visit counts as activity
    _age(app, last_seen_at=timedelta(minutes=119))
    assert ann.get("/").status_code == 200
    _age(app, last_seen_at=timedelta(minutes=121))
    response = ann.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert [row for row in _rows(app) if row.user_id] == []


def test_sessions_end_after_their_lifetime_however_active(app, ann):
    _age(app, created_at=timedelta(days=13, hours=23))
    assert ann.get("/").status_code == 200
    _age(app, created_at=timedelta(hours=2))
    assert ann.get("/").status_code == 302


def test_lifetimes_are_configurable(app, ann):
    app.config.update(SESSION_IDLE_MINUTES=5, SESSION_MAX_DAYS=1)
    try:
        _age(app, last_seen_at=timedelta(minutes=6))
        assert ann.get("/").status_code == 302
    finally:
        app.config.update(SESSION_IDLE_MINUTES=120, SESSION_MAX_DAYS=14)


def test_a_session_ended_elsewhere_mid_request_is_not_revived(app, ann):
    token = ann.cookie()
    with app.app_context():
        db.session.execute(update(WebSession).values(last_seen_at=WebSession.created_at))
        db.session.commit()
        assert sessions.save_session(token, None) is True
        sessions.end_session(token)
        assert sessions.save_session(token, '{"user_id": "x"}') is False
        assert sessions.find_session(token) is None


def test_api_tokens_work_beside_a_browser_session(ann, client):
    from tests.conftest import Account

    account = Account(client, "apiuser")
    response = ann.client.get("/api/v1/users/me", headers=account.headers)
    assert response.get_json()["username"] == "apiuser"
    assert ann.client.get("/api/v1/users/me").status_code == 401  # a cookie is no API login
