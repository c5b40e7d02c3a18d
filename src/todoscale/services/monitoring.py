"""What the operators see: job figures from the job table, admin roles, admin job actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from todoscale.exceptions import ConflictError, NotFoundError
from todoscale.extensions import db
from todoscale.models import Job, Notification, User
from todoscale.models.jobs import FAILED, FINISHED, QUEUED
from todoscale.services.accounts import find_user
from todoscale.services.audit import security_event
from todoscale.signals import job_queued, job_updated

_JOBS = Job.__table__


def job_counts() -> list[tuple[str, str, int]]:
    """How many jobs there are of each kind and status."""
    rows = db.session.execute(
        select(_JOBS.c.kind, _JOBS.c.status, func.count()).group_by(_JOBS.c.kind, _JOBS.c.status)
    ).all()
    db.session.rollback()
    return [(kind, status, int(count)) for kind, status, count in rows]


def finished_jobs(after: datetime | None, limit: int = 10_000) -> list[Any]:
    """Finished jobs (id, kind, status, created, started, finished), oldest finish first,
    finished at or after `after`."""
    query = select(
        _JOBS.c.id,
        _JOBS.c.kind,
        _JOBS.c.status,
        _JOBS.c.created_at,
        _JOBS.c.started_at,
        _JOBS.c.finished_at,
    ).where(_JOBS.c.status.in_(FINISHED), _JOBS.c.finished_at.is_not(None))
    if after is not None:
        query = query.where(_JOBS.c.finished_at >= after)
    rows = db.session.execute(query.order_by(_JOBS.c.finished_at).limit(limit)).all()
    db.session.rollback()
    return list(rows)


def reminder_counts() -> tuple[int, int]:
    """Reminders sent in the app, and of those, by email."""
    row = db.session.execute(
        select(func.count(), func.count(Notification.emailed_at)).where(
            Notification.kind == "reminder"
        )
    ).one()
    db.session.rollback()
    return int(row[0]), int(row[1])


def recent_jobs(status: str, limit: int = 50) -> list[Job]:
    """The newest jobs of one status, with their owners' names loaded."""
    jobs = list(
        db.session.scalars(
            select(Job).where(Job.status == status).order_by(Job.created_at.desc()).limit(limit)
        )
    )
    return jobs


def usernames(user_ids: set[str]) -> dict[str, str]:
    """Usernames by id."""
    if not user_ids:
        return {}
    rows = db.session.execute(select(User.id, User.username).where(User.id.in_(user_ids)))
    return {user_id: name for user_id, name in rows}


def retry_job(actor: User, job_id: str) -> Job:
    """Queue a failed job again from its first attempt (admins only); announce it."""
    _require_admin(actor)
    result = db.session.execute(
        update(_JOBS)
        .where(_JOBS.c.id == job_id, _JOBS.c.status == FAILED)
        .values(
            status=QUEUED, attempts=0, progress=0, error=None, finished_at=None, lease_until=None
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        if db.session.get(Job, job_id) is None:
            raise NotFoundError("No such job.")
        raise ConflictError("Only a failed job can be retried.")
    db.session.commit()
    job = db.session.get(Job, job_id, populate_existing=True)
    assert job is not None
    security_event("admin.job_retried", user=actor.username, job_id=job_id, kind=job.kind)
    job_queued.send(retry_job, job_id=job_id)
    job_updated.send(retry_job, job=job)
    return job


def set_admin(username: str, admin: bool, *, by: str = "cli") -> User:
    """Grant or revoke the admin role of a user; log it as a security event."""
    user = find_user(username)
    if user is None:
        raise NotFoundError(f"No user is named {username!r}.")
    user.is_admin = admin
    db.session.commit()  # bumps the user's scope: cached token lookups carry the role
    security_event("admin.granted" if admin else "admin.revoked", user=user.username, by=by)
    return user


def _require_admin(actor: User) -> None:
    if not actor.is_admin:
        raise NotFoundError("Not found.")  # the console does not exist for anyone else
