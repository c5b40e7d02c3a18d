"""Web sessions seen from outside a request: which tokens still open a logged-in session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from todoscale.config import Settings
from todoscale.extensions import db
from todoscale.models import WebSession, utcnow
from todoscale.services import sessions


def test_live_session_tokens_keeps_only_logged_in_unexpired_sessions(ctx, alice):
    live, _ = sessions.start_session(alice.user["id"], "{}")
    anonymous, _ = sessions.start_session(None, "{}")
    ended, _ = sessions.start_session(alice.user["id"], "{}")
    sessions.end_session(ended)
    idle, record = sessions.start_session(alice.user["id"], "{}")
    long_ago = utcnow() - timedelta(days=1)
    db.session.execute(
        update(WebSession).where(WebSession.id == record.id).values(last_seen_at=long_ago)
    )
    db.session.commit()

    tokens = [live, anonymous, ended, idle, "never-issued", "x" * 500]
    assert sessions.live_session_tokens(tokens) == {live}
    assert sessions.live_session_tokens([]) == set()


def test_lifetimes_and_a_cookies_expiry_need_no_app():
    limits = sessions.Lifetimes.of({"SESSION_IDLE_MINUTES": 5, "SESSION_MAX_DAYS": 2})
    assert limits == sessions.Lifetimes(idle=timedelta(minutes=5), absolute=timedelta(days=2))
    defaults = sessions.Lifetimes.of(Settings().model_dump())
    assert defaults == sessions.Lifetimes(idle=timedelta(minutes=120), absolute=timedelta(days=14))

    created = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    record = WebSession(created_at=created, last_seen_at=created)
    assert sessions.expires_at(record, limits=limits) == created + timedelta(days=2)


def test_given_lifetimes_decide_which_sessions_are_live(ctx, alice):
    token, record = sessions.start_session(alice.user["id"], "{}")
    an_hour_ago = utcnow() - timedelta(hours=1)
    db.session.execute(
        update(WebSession).where(WebSession.id == record.id).values(last_seen_at=an_hour_ago)
    )
    db.session.commit()
    short = sessions.Lifetimes(idle=timedelta(minutes=30), absolute=timedelta(days=1))

    assert sessions.live_session_tokens([token]) == {token}  # the app's: 120 minutes idle
    assert sessions.live_session_tokens([token], limits=short) == set()
    assert sessions.find_session(token, limits=short) is None  # and deleted on sight
    assert sessions.live_session_tokens([token]) == set()
