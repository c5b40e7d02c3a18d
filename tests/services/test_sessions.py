"""Web sessions seen from outside a request: which tokens still open a logged-in session."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

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
