"""Celery, wired the Flask way: one Celery app per Flask app, tasks run in its app context.

Tasks are thin (ids in, one service call, retries) and live in this package's modules;
`todoscale.worker` is the worker's entry point. The job row, not the broker message, is the
source of truth (see `services.jobs`), so the broker may lose or repeat a message.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init, worker_ready
from flask import Flask, current_app

from todoscale import localqueue  # noqa: F401  (the `sqla` scheme's transport, polled often)
from todoscale.config import broker_url
from todoscale.ops.metrics import start_process
from todoscale.signals import job_queued

logger = logging.getLogger(__name__)

RUN_JOB = "todoscale.run_job"
REQUEUE_STALLED_JOBS = "todoscale.requeue_stalled_jobs"
SEND_DUE_REMINDERS = "todoscale.send_due_reminders"
PURGE_EXPIRED = "todoscale.purge_expired"


def init_app(app: Flask) -> Celery:
    """Create the app's Celery app from its config and keep it in `app.extensions`."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.import_name, task_cls=FlaskTask)
    celery_app.conf.update(celery_settings(app.config, app.instance_path))
    celery_app.set_default()
    beat.install(celery_app)
    app.extensions["celery"] = celery_app
    _connect_receivers()
    worker_process_init.connect(lambda **_: start_process(app), weak=False)
    return celery_app


def celery_settings(config: Any, instance_path: str) -> dict[str, Any]:
    """Celery's settings, derived from the app's: reliable delivery over throughput."""
    broker = broker_url(config, instance_path)
    return {
        "broker_url": broker,
        "result_backend": config.get("REDIS_URL") or None,
        # The job table records status and progress; task results are not needed.
        "task_ignore_result": True,
        # Acknowledge after the task ran, and give the message back if its worker died:
        # a killed worker's job runs again (the job row makes the rerun harmless).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": config["WORKER_CONCURRENCY"],
        "broker_connection_retry_on_startup": True,
        "task_default_queue": "todoscale",
        "timezone": "UTC",
        "worker_hijack_root_logger": False,
        "beat_schedule_filename": os.path.join(instance_path, "celerybeat-schedule"),
        "beat_schedule": {
            "requeue-stalled-jobs": {
                "task": REQUEUE_STALLED_JOBS,
                "schedule": float(config["JOB_SWEEP_SECONDS"]),
            },
            "send-due-reminders": {
                "task": SEND_DUE_REMINDERS,
                "schedule": float(config["REMINDER_INTERVAL_SECONDS"]),
            },
            "purge-expired": {
                "task": PURGE_EXPIRED,
                "schedule": float(config["PURGE_INTERVAL_SECONDS"]),
            },
        },
    }


def _connect_receivers() -> None:
    # Signals are process-wide, and connecting a receiver again is a no-op (blinker and
    # Celery both key receivers by identity): a process may create several apps (tests).
    job_queued.connect(_enqueue_job, weak=False)
    worker_ready.connect(_sweep_on_start, weak=False)
    reminders.connect_receivers()


def _sweep_on_start(sender: Any, **_: object) -> None:
    """A starting worker sweeps once: jobs a killed worker held need not wait for beat."""
    try:
        sender.app.send_task(REQUEUE_STALLED_JOBS)
    except Exception:  # process boundary: beat's next sweep does the same
        logger.exception("could not send the start-up sweep")


def _enqueue_job(sender: object, *, job_id: str, **_: object) -> None:
    """After commit: hand the job to a worker. A broker failure leaves it queued for the sweep."""
    try:
        current_app.extensions["celery"].send_task(RUN_JOB, args=[job_id])
    except Exception:  # process boundary: the job is committed; the sweep sends it later
        logger.exception("could not enqueue job %s; the sweep will send it again", job_id)


from todoscale.tasks import beat, jobs, reminders, retention  # noqa: E402, F401  (registers tasks)
