"""services.retention and the purges it runs: what outlived its retention goes, in batches,
and nothing else does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from todoscale.extensions import db
from todoscale.models import ApiToken, Job, Notification, WebSession, utcnow
from todoscale.models.jobs import EXPORT, FAILED, IMPORT, QUEUED, RUNNING, SUCCEEDED
from todoscale.services import accounts, batches, jobs, notifications, retention, sessions

NOW = utcnow()
DAY = timedelta(days=1)


def _job(user_id: str, status: str, *, finished_days_ago: float | None, kind: str = EXPORT) -> str:
    finished = None if finished_days_ago is None else NOW - finished_days_ago * DAY
    job = Job(
        user_id=user_id,
        kind=kind,
        status=status,
        created_at=NOW - 30 * DAY,
        finished_at=finished,
        result=b"title\nan export file\n" if status == SUCCEEDED else None,
    )
    db.session.add(job)
    db.session.commit()
    return job.id


@pytest.fixture
def world(ctx):
    """Olive's rows of every kind, some past their retention (defaults: 7 and 90 days)."""
    olive = accounts.register_user("olive", "olive@example.com", "long enough pw")
    ids = {
        "old_export": _job(olive.id, SUCCEEDED, finished_days_ago=8),
        "old_failure": _job(olive.id, FAILED, finished_days_ago=7.5, kind=IMPORT),
        "recent_export": _job(olive.id, SUCCEEDED, finished_days_ago=6),
        "running": _job(olive.id, RUNNING, finished_days_ago=None),
        "queued": _job(olive.id, QUEUED, finished_days_ago=None),
    }
    expired, _ = accounts.issue_token(olive)
    db.session.execute(
        ApiToken.__table__.update()
        .where(ApiToken.token_hash == accounts._digest(expired))
        .values(expires_at=NOW - timedelta(seconds=1))
    )
    live, _ = accounts.issue_token(olive)
    idle = WebSession(
        token_hash="a" * 64,
        user_id=olive.id,
        created_at=NOW,
        last_seen_at=NOW - timedelta(hours=3),
    )
    too_old = WebSession(
        token_hash="b" * 64, user_id=None, created_at=NOW - 15 * DAY, last_seen_at=NOW
    )
    fresh = WebSession(token_hash="c" * 64, user_id=olive.id, created_at=NOW, last_seen_at=NOW)
    db.session.add_all([idle, too_old, fresh])
    db.session.add_all(
        Notification(user_id=olive.id, title=f"n{days}", created_at=NOW - days * DAY)
        for days in (91, 120, 89)
    )
    db.session.commit()
    return {**ids, "live_token": live, "fresh_session": fresh.id}


def _remaining(model) -> list:
    db.session.expire_all()
    return list(db.session.scalars(select(model)))


def test_the_purge_deletes_what_outlived_its_retention_and_nothing_else(world, monkeypatch):
    monkeypatch.setattr(batches, "BATCH", 1)  # every delete takes several transactions

    assert retention.purge_expired(NOW) == {
        "jobs": 2,
        "tokens": 1,
        "sessions": 2,
        "notifications": 2,
    }

    assert {job.id for job in _remaining(Job)} == {
        world["recent_export"],
        world["running"],
        world["queued"],
    }
    assert [accounts.user_for_token(world["live_token"]) is not None] == [True]
    assert len(_remaining(ApiToken)) == 1
    assert [row.id for row in _remaining(WebSession)] == [world["fresh_session"]]
    assert [row.title for row in _remaining(Notification)] == ["n89"]
    assert retention.purge_expired(NOW) == dict.fromkeys(
        ("jobs", "tokens", "sessions", "notifications"), 0
    )


def test_each_purge_follows_its_setting(world, app, monkeypatch):
    monkeypatch.setitem(app.config, "JOB_RETENTION_DAYS", 5)
    monkeypatch.setitem(app.config, "NOTIFICATION_RETENTION_DAYS", 100)
    monkeypatch.setitem(app.config, "SESSION_IDLE_MINUTES", 24 * 60)

    assert jobs.purge_finished_jobs(NOW) == 3  # the recent export is past 5 days too
    assert notifications.purge_old_notifications(NOW) == 1  # only the 120-day one
    assert sessions.purge_expired_sessions(NOW) == 1  # the 15-day one; idle 3 h is fine now
    assert accounts.purge_expired_tokens(NOW) == 1
    assert {job.status for job in _remaining(Job)} == {RUNNING, QUEUED}
