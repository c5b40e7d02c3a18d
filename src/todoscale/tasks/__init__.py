"""Celery, wired the Flask way: one Celery app per Flask app, tasks run in its app context.

Tasks are thin (ids in, one service call, retries) and live in this package's modules;
`todoscale.worker` is the worker's entry point. The job row, not the broker message, is the
source of truth (see `services.jobs`), so the broker may lose or repeat a message.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init, worker_ready
from flask import Flask, current_app
from kombu.exceptions import KombuError

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


# A Redis broker's socket timeouts. kombu's default is none: a publish to a hung Redis
# (SIGSTOP: the kernel still takes the connection and the command) waited as long as the
# hang lasted, inside the request that queued the job (tests/tasks/test_unsent.py). Not
# for the worker and beat: `todoscale.worker` drops them (see there why).
REDIS_BROKER_OPTIONS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
# `ignore_result`: without it a send also subscribes this process to the task's result on
# the result backend (Redis), a result nobody reads (the job row is the job's state): one
# more subscription per job, and, while Redis was refused, 20 retries a second apart inside
# the request (an import answered after 19 s, tests/tasks/test_unsent.py).
# A request hands its job over with one retry (a pooled connection that Redis dropped when
# it restarted), not Celery's three: `Unsent` tries again from its own thread.
REQUEST_PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2,
                         "interval_max": 0.2}  # fmt: skip


def celery_settings(config: Any, instance_path: str) -> dict[str, Any]:
    """Celery's settings, derived from the app's: reliable delivery over throughput."""
    broker = broker_url(config, instance_path)
    redis_broker = broker.startswith(("redis://", "rediss://", "unix://"))
    return {
        "broker_url": broker,
        "broker_transport_options": dict(REDIS_BROKER_OPTIONS) if redis_broker else {},
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


class Unsent:
    """Jobs this process acknowledged but could not hand to the broker, sent again from a
    thread of its own as soon as the broker answers.

    Without it such a job waited for the stalled-job sweep: beat's, every JOB_SWEEP_SECONDS,
    and only once the job is older than that (a start-up sweep of a worker passes a younger
    one over), or forever where no beat runs. The sweep stays the backstop (a process that
    exits loses this list, not the jobs); a job sent twice runs once (`services.jobs`).
    """

    FIRST_PAUSE, LONGEST_PAUSE = 0.5, 5.0
    MAX_JOBS = 10_000  # beyond that the sweep sends them

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Celery] = {}
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, celery_app: Celery, job_id: str) -> None:
        """Send `job_id` through `celery_app` once its broker answers."""
        with self._lock:
            if len(self._jobs) < self.MAX_JOBS:
                self._jobs[job_id] = celery_app
            # A forked child inherits the list, not the thread: it starts its own.
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="todoscale-unsent-jobs")  # fmt: skip
                self._thread.start()

    def pending(self) -> list[str]:
        """The ids still waiting for the broker."""
        with self._lock:
            return list(self._jobs)

    def _run(self) -> None:
        pause = self.FIRST_PAUSE
        while True:
            time.sleep(pause)
            with self._lock:
                if not self._jobs:
                    self._thread = None
                    return
                waiting = list(self._jobs.items())
            for job_id, celery_app in waiting:
                try:
                    celery_app.send_task(RUN_JOB, args=[job_id], ignore_result=True)
                except (KombuError, OSError):  # still away: try again after a longer pause
                    pause = min(pause * 2, self.LONGEST_PAUSE)
                    break
                with self._lock:
                    self._jobs.pop(job_id, None)
            else:
                logger.warning("the broker answers again; %d unsent jobs sent", len(waiting))
                pause = self.FIRST_PAUSE


unsent = Unsent()


def _enqueue_job(sender: object, *, job_id: str, **_: object) -> None:
    """After commit: hand the job to a worker. A broker failure leaves it to be sent again by
    this process once the broker answers (`Unsent`), and by the sweep."""
    celery_app = current_app.extensions["celery"]
    try:
        celery_app.send_task(
            RUN_JOB, args=[job_id], ignore_result=True, retry_policy=REQUEST_PUBLISH_RETRY
        )
    except Exception:  # process boundary: the job is committed; it is sent again later
        logger.exception("could not enqueue job %s; it is sent again once the broker answers",
                         job_id)  # fmt: skip
        unsent.add(celery_app, job_id)


from todoscale.tasks import beat, jobs, reminders, retention  # noqa: E402, F401  (registers tasks)
