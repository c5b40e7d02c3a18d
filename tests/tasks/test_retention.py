"""tasks.retention: the purge task calls the service, and beat runs it in a real worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.workers import wait_for
from todoscale.extensions import db
from todoscale.models import Job, Notification, utcnow
from todoscale.models.jobs import EXPORT, SUCCEEDED
from todoscale.services.accounts import register_user
from todoscale.tasks import PURGE_EXPIRED
from todoscale.tasks import retention as tasks


@pytest.fixture
def old_rows(ctx):
    """An export finished 30 days ago, with its file, and a notification of last year."""
    olive = register_user("olive", "olive@example.com", "long enough pw")
    long_ago = utcnow() - timedelta(days=30)
    db.session.add_all(
        [
            Job(
                user_id=olive.id,
                kind=EXPORT,
                status=SUCCEEDED,
                finished_at=long_ago,
                result=b"title\nx\n",
            ),
            Notification(user_id=olive.id, title="old", created_at=utcnow() - timedelta(days=400)),
        ]
    )
    db.session.commit()


def _count(model) -> int:
    db.session.expire_all()
    count = db.session.scalar(select(func.count()).select_from(model)) or 0
    db.session.rollback()
    return count


def test_the_task_calls_the_service_and_beat_schedules_it(old_rows, app):
    assert tasks.purge_expired.name == PURGE_EXPIRED
    schedule = app.extensions["celery"].conf.beat_schedule["purge-expired"]
    assert schedule == {"task": PURGE_EXPIRED, "schedule": app.config["PURGE_INTERVAL_SECONDS"]}

    purged = tasks.purge_expired.run()

    assert (purged["jobs"], purged["notifications"]) == (1, 1)
    assert _count(Job) == _count(Notification) == 0


@pytest.mark.services
def test_beat_purges_in_a_real_worker(old_rows, start_worker):
    """Nothing was ever purged: finished jobs and their files stayed for good."""
    worker = start_worker(beat=True, env={"TODOSCALE_PURGE_INTERVAL_SECONDS": "1"})

    # Each kind is its own transaction: wait for the last one.
    wait_for(
        lambda: _count(Job) == _count(Notification) == 0,
        timeout=60,
        message="beat's purge did not run",
    )

    assert "Sending due task purge-expired" in worker.log()
    assert "Traceback" not in worker.log(), worker.log()[-3000:]
