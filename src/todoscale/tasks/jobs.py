"""Job tasks: run one export or import, and beat's sweep for jobs the broker lost."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from todoscale.services import jobs
from todoscale.tasks import REQUEUE_STALLED_JOBS, RUN_JOB

# Errors worth another try: the database went away, or its pool was exhausted for a moment.
TRANSIENT = (OperationalError, InterfaceError, PoolTimeoutError, ConnectionError)


@shared_task(
    name=RUN_JOB,
    bind=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    # The job row counts the attempts too: its last one marks the job failed.
    max_retries=jobs.MAX_ATTEMPTS - 1,
)
def run_job(self: Any, job_id: str) -> None:
    """Run a job by id; a repeated or late message is harmless (the row decides)."""
    jobs.run_job(job_id, worker_name=self.request.hostname or "worker")


@shared_task(name=REQUEUE_STALLED_JOBS)
def requeue_stalled_jobs() -> int:
    """Send again the jobs that are queued too long or whose worker's lease ran out."""
    return jobs.requeue_stalled_jobs()
