"""Background jobs: exports and imports, queued by a request and run by a worker.

The job row is the source of truth, not the broker's message. A worker claims a job with
one conditional UPDATE (queued, or running with an expired lease), extends its lease as it
reports progress, and commits the job's effect together with its final status, each of
those writes conditional on still owning the claim (status running, same attempt). So a
repeated message finds nothing to claim, a worker killed mid-job leaves no partial effect,
and a worker whose lease ran out while it was stalled cannot finish what another took over.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from todoscale.config.current import app_settings
from todoscale.exceptions import (
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    TodoscaleError,
    ValidationError,
)
from todoscale.extensions import db
from todoscale.models import Job, Todo, User, new_id, utcnow
from todoscale.models.jobs import EXPORT, FAILED, FINISHED, IMPORT, QUEUED, RUNNING, SUCCEEDED
from todoscale.services import import_files, transfer
from todoscale.services.batches import delete_in_batches
from todoscale.services.lists import visible_list
from todoscale.signals import job_queued, job_updated, list_updated

logger = logging.getLogger(__name__)

# The largest import file (the request limit, TODOSCALE_MAX_UPLOAD_BYTES, is checked first).
MAX_IMPORT_BYTES = 10 * 1024 * 1024
# Runs of one job before it is marked failed: the first and the task layer's five retries.
# Claims count, so a job that kills its worker every time fails too instead of looping.
MAX_ATTEMPTS = 6
# Rows read, checked and inserted at a time: what an import holds in memory beside its file.
# Progress is committed (and the lease extended) once per batch.
INSERT_BATCH = 5_000

_JOBS = Job.__table__
_TODOS = Todo.__table__


def create_export(actor: User, *, fmt: str, list_id: str | None = None) -> Job:
    """Queue an export of one list (or of every list `actor` can see) as CSV or JSON."""
    if fmt not in transfer.FORMATS:
        raise ValidationError({"format": ["must be 'csv' or 'json'"]})
    if list_id is not None:
        list_id = visible_list(actor, list_id).id
    params = {"format": fmt, "list_id": list_id}
    job = Job(user_id=actor.id, kind=EXPORT, status=QUEUED, params=json.dumps(params))
    return _queue(job, create_export)


def create_import(
    actor: User, *, list_id: str, filename: str, data: bytes, max_rows: int | None = None
) -> Job:
    """Queue an import of an export file (CSV or JSON) into a list `actor` can write to.

    Only what the answer needs is checked here, streaming: the file is an export and holds
    at most `max_rows` rows (by default IMPORT_MAX_ROWS). The rows themselves are checked by
    the worker, which imports all of them or, if any is bad, none.
    """
    target = visible_list(actor, list_id)  # every member may add todos to a list
    if len(data) > MAX_IMPORT_BYTES:
        raise PayloadTooLargeError(f"The file is larger than {MAX_IMPORT_BYTES} bytes.")
    max_rows = app_settings()["IMPORT_MAX_ROWS"] if max_rows is None else max_rows
    fmt, rows = import_files.count_rows(data, max_rows)
    params = {"format": fmt, "list_id": target.id, "filename": filename[:200], "rows": rows}
    job = Job(user_id=actor.id, kind=IMPORT, status=QUEUED, params=json.dumps(params), payload=data)
    return _queue(job, create_import)


def _queue(job: Job, sender: object) -> Job:
    db.session.add(job)
    db.session.commit()
    # After commit: the receiver hands the id to the broker; the row already exists.
    job_queued.send(sender, job_id=job.id)
    job_updated.send(sender, job=job)
    return job


def get_job(actor: User, job_id: str) -> Job:
    """One of `actor`'s jobs; NotFoundError for any other id."""
    if "\x00" in job_id or len(job_id) > 64:
        raise NotFoundError("No such job.")
    job = db.session.scalars(select(Job).where(Job.id == job_id, Job.user_id == actor.id)).first()
    if job is None:
        raise NotFoundError("No such job.")
    return job


def recent_jobs(actor: User, *, limit: int = 20) -> list[Job]:
    """`actor`'s newest jobs, newest first (the files themselves are not loaded)."""
    return list(
        db.session.scalars(
            select(Job)
            .where(Job.user_id == actor.id)
            .order_by(Job.created_at.desc(), Job.id.desc())
            .limit(limit)
        )
    )


def job_params(job: Job) -> dict[str, Any]:
    """What the job was asked to do: its `format`, `list_id` (None: every list), `filename`."""
    params: dict[str, Any] = json.loads(job.params)
    return {"format": None, "list_id": None, "filename": None, **params}


def job_result(actor: User, job_id: str) -> tuple[bytes, str, str]:
    """An export's file: its bytes, content type and file name; ConflictError until it is done."""
    job = get_job(actor, job_id)
    if job.kind != EXPORT:
        raise NotFoundError("Only exports have a result file.")
    if job.status == FAILED:
        raise ConflictError(f"The export failed, so it has no file: {job.error}")
    if job.status != SUCCEEDED or job.result is None:
        raise ConflictError(f"The export is {job.status}; its file is ready when it succeeds.")
    return job.result, job.result_type or "application/octet-stream", job.result_name or "export"


class LostClaimError(Exception):
    """The job was taken over (its lease expired) or finished by another worker."""


class _Claim:
    """A worker's hold on one attempt of a job: every write is conditional on keeping it."""

    def __init__(self, job_id: str, attempt: int, worker_name: str, lease: timedelta) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.worker_name = worker_name
        self.lease = lease
        self.reported = 0

    def _owned(self) -> ColumnElement[bool]:
        return and_(
            _JOBS.c.id == self.job_id,
            _JOBS.c.status == RUNNING,
            _JOBS.c.attempts == self.attempt,
        )

    def _write(self, **values: Any) -> None:
        """Update the job row inside the current transaction, or LostClaimError."""
        result = db.session.execute(update(_JOBS).where(self._owned()).values(**values))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            db.session.rollback()
            raise LostClaimError(self.job_id)

    def progress(self, percent: int) -> None:
        """Commit a higher progress and extend the lease; announce it."""
        if percent <= self.reported:
            return
        self.reported = percent
        self._write(progress=percent, lease_until=utcnow() + self.lease)
        db.session.commit()
        _announce(self.job_id, run_job)

    def finish(self, **values: Any) -> None:
        """Mark the job succeeded in the current transaction (the caller adds the effect)."""
        self._write(
            status=SUCCEEDED, progress=100, finished_at=utcnow(), lease_until=None, **values
        )

    def requeue(self) -> None:
        """Put the job back in the queue after a failed attempt, for the retry (or the sweep)."""
        try:
            self._write(status=QUEUED, lease_until=None)
            db.session.commit()
        except LostClaimError:
            pass
        except Exception:  # the database may be what failed: the lease runs out, the sweep retries
            db.session.rollback()
            logger.exception("job %s: could not put it back in the queue", self.job_id)

    def fail(self, error: str) -> None:
        """Mark the job failed, with `error` saying why, and commit."""
        self._write(
            status=FAILED, error=error, finished_at=utcnow(), lease_until=None, payload=None
        )
        db.session.commit()
        _announce(self.job_id, run_job)


def _announce(job_id: str, sender: object) -> None:
    job = db.session.get(Job, job_id, populate_existing=True)
    if job is not None:
        job_updated.send(sender, job=job)


def _lease(lease: timedelta | None) -> timedelta:
    """`lease`, or when None the running app's JOB_LEASE_SECONDS."""
    return timedelta(seconds=app_settings()["JOB_LEASE_SECONDS"]) if lease is None else lease


def _claim(job_id: str, worker_name: str, lease: timedelta) -> _Claim | None:
    """Take the job if it is queued or its lease expired; None if done or held by a live worker."""
    now = utcnow()
    lease_until = now + lease
    claimable = or_(
        _JOBS.c.status == QUEUED, and_(_JOBS.c.status == RUNNING, _JOBS.c.lease_until < now)
    )
    result = db.session.execute(
        update(_JOBS)
        .where(_JOBS.c.id == job_id, claimable)
        .values(
            status=RUNNING,
            attempts=_JOBS.c.attempts + 1,
            started_at=now,
            lease_until=lease_until,
            progress=0,
        )
    )
    db.session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        logger.info("job %s: nothing to claim (finished, or held by a live worker)", job_id)
        return None
    attempt = db.session.scalar(select(_JOBS.c.attempts).where(_JOBS.c.id == job_id))
    assert attempt is not None
    logger.info("job %s: attempt %d claimed by %s", job_id, attempt, worker_name)
    return _Claim(job_id, attempt, worker_name, lease)


def run_job(job_id: str, *, worker_name: str, lease: timedelta | None = None) -> None:
    """Run a queued job once; a repeated call, or one for a job another worker holds, does nothing.

    The worker holds the job for `lease` (by default JOB_LEASE_SECONDS) past each report of
    progress. Unexpected errors put the job back in the queue and propagate, for the task
    layer to retry; after `MAX_ATTEMPTS` runs the job is marked failed instead.
    """
    claim = _claim(job_id, worker_name, _lease(lease))
    if claim is None:
        return
    _announce(job_id, run_job)
    try:
        if claim.attempt > MAX_ATTEMPTS:
            claim.fail(f"Gave up after {MAX_ATTEMPTS} attempts.")
            return
        job = db.session.get(Job, job_id)
        assert job is not None
        params = json.loads(job.params)
        if job.kind == EXPORT:
            _run_export(claim, job, params)
        else:
            _run_import(claim, job, params)
    except LostClaimError:
        logger.warning("job %s: attempt %d lost its claim; stopping", job_id, claim.attempt)
    except Exception as exc:
        db.session.rollback()
        if claim.attempt >= MAX_ATTEMPTS:
            logger.exception("job %s: attempt %d failed; giving up", job_id, claim.attempt)
            claim.fail(f"Failed after {claim.attempt} attempts: {type(exc).__name__}: {exc}")
            return
        claim.requeue()
        raise


def _run_export(claim: _Claim, job: Job, params: dict[str, Any]) -> None:
    fmt, list_id = params["format"], params.get("list_id")
    user = db.session.get(User, job.user_id)
    assert user is not None  # jobs go with their user (ON DELETE CASCADE)
    try:
        name = visible_list(user, list_id).name if list_id else "todos"
    except NotFoundError:
        claim.fail("The list no longer exists, or you are no longer a member of it.")
        return
    rows = transfer.export_rows(user.id, list_id)
    claim.progress(50)
    data = transfer.render(rows, fmt)
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    claim.finish(
        result=data,
        result_type=transfer.CONTENT_TYPES[fmt],
        result_name=f"{_file_stem(name)}-{stamp}.{fmt}",
    )
    db.session.commit()
    _announce(job.id, run_job)


def _file_stem(name: str) -> str:
    stem = "".join(char if char.isalnum() or char in "-_" else "-" for char in name)
    return stem.strip("-")[:60] or "todos"


def _run_import(claim: _Claim, job: Job, params: dict[str, Any]) -> None:
    user = db.session.get(User, job.user_id)
    assert user is not None
    data, now = job.payload or b"", utcnow()
    try:
        target = visible_list(user, params["list_id"])
        # First pass: check every row, keep nothing but the faults (progress up to 90 %).
        errors = _check_file(claim, data, now, params.get("rows") or 1)
    except TodoscaleError as exc:
        claim.fail(str(exc.detail))
        return
    if errors:
        claim.fail(errors)
        return
    # Second pass, one transaction: the rows and the job's success commit together, or
    # neither does. The job row is written first, so a sweep that finds the lease run out
    # meanwhile waits for this transaction and then finds nothing left to take over.
    claim.finish(payload=None)  # the file served its purpose: do not keep 10 MB per import
    for part in _checked_parts(data, now):
        for row in part.rows:
            row.update(id=new_id(), list_id=target.id, creator_id=user.id, version=1)
        # Core's executemany on the table: the ORM's bulk path would split the rows into
        # single-row statements wherever the pattern of None values changes.
        db.session.execute(insert(_TODOS), part.rows)
    db.session.commit()
    list_updated.send(run_job, todo_list=target)
    _announce(job.id, run_job)


def _checked_parts(data: bytes, now: datetime) -> Iterator[transfer.CheckedRows]:
    """The file's rows, read as a stream and checked `INSERT_BATCH` at a time."""
    fmt, raws = import_files.read_rows(data)
    first = 1
    while part := list(itertools.islice(raws, INSERT_BATCH)):
        yield transfer.check_rows(part, fmt, now, first=first)
        first += len(part)


def _check_file(claim: _Claim, data: bytes, now: datetime, total: int) -> str | None:
    """What is wrong with the file's rows (the first rows' faults named), or None."""
    named: list[str] = []
    faults = checked = 0
    for part in _checked_parts(data, now):
        named += part.errors[: transfer.MAX_NAMED_ROWS - len(named)]
        faults += len(part.errors)
        checked += len(part.rows) + len(part.errors)
        claim.progress(min(90, checked * 90 // total))
    return transfer.error_text(named, faults) if faults else None


def requeue_stalled_jobs(
    now: datetime | None = None, *, sweep: timedelta | None = None, lease: timedelta | None = None
) -> int:
    """Send again the jobs the broker seems to have lost; return how many.

    Those queued for longer than `sweep` (by default JOB_SWEEP_SECONDS: a message lost
    before a worker got it) and those running past their lease (a worker killed mid-job: the
    local queue never restores its message, Redis only after an hour). A resent queued job is
    given a `lease` too (by default JOB_LEASE_SECONDS), so the next sweeps leave it alone
    while the broker delivers it.
    """
    now = now or utcnow()
    if sweep is None:
        sweep = timedelta(seconds=app_settings()["JOB_SWEEP_SECONDS"])
    queued_since = now - sweep
    stalled = or_(
        and_(
            _JOBS.c.status == QUEUED,
            _JOBS.c.created_at < queued_since,
            or_(_JOBS.c.lease_until.is_(None), _JOBS.c.lease_until < now),
        ),
        and_(_JOBS.c.status == RUNNING, _JOBS.c.lease_until < now),
    )
    ids = list(db.session.scalars(select(_JOBS.c.id).where(stalled).order_by(_JOBS.c.created_at)))
    if not ids:
        db.session.rollback()
        return 0
    # A running job whose lease expired goes back to the queue: its worker, if it was only
    # stalled, then fails its next conditional write and stops.
    db.session.execute(
        update(_JOBS)
        .where(_JOBS.c.id.in_(ids), stalled)
        .values(status=QUEUED, lease_until=now + _lease(lease))
    )
    db.session.commit()
    for job_id in ids:
        job_queued.send(requeue_stalled_jobs, job_id=job_id)
    logger.info("requeued %d stalled jobs", len(ids))
    return len(ids)


def purge_finished_jobs(now: datetime | None = None, *, keep: timedelta | None = None) -> int:
    """Delete the jobs that finished over `keep` ago (by default JOB_RETENTION_DAYS), with
    their export files (beat's purge runs it); queued and running jobs stay. Return how many."""
    keep = timedelta(days=app_settings()["JOB_RETENTION_DAYS"]) if keep is None else keep
    old = and_(_JOBS.c.status.in_(FINISHED), _JOBS.c.finished_at < (now or utcnow()) - keep)
    return delete_in_batches(_JOBS, old)
