"""Celery beat as a thread of the worker: `celery worker --beat-thread`.

Celery's own `--beat` embeds beat as a process the worker forks (`celery.beat._Process`);
`todoscale run`'s single worker pays that process's memory (63 MiB of PSS here, measured
with `python -m todoscale.bench` rung 8) for a loop that wakes once a second to send three
periodic tasks. `celery.beat.EmbeddedService(thread=True)` is beat's documented threaded
form; this step starts it beside the worker's pool and stops it with the worker.
"""

from __future__ import annotations

from typing import Any

import click
from celery import Celery, bootsteps
from celery.beat import EmbeddedService

OPTION = "--beat-thread"


class BeatThread(bootsteps.StartStopStep):
    """Beat in a thread of the worker, when the worker is started with `--beat-thread`."""

    label = "Beat (thread)"
    conditional = True

    def __init__(self, worker: Any, beat_thread: bool = False, **kwargs: Any) -> None:
        self.enabled = beat_thread
        super().__init__(worker, **kwargs)

    def create(self, worker: Any) -> Any:
        # The schedule's file and the scheduler are the app's settings (tasks.celery_settings).
        return EmbeddedService(worker.app, thread=True)


def install(celery_app: Celery) -> None:
    """Give `celery_app`'s worker the `--beat-thread` option and its step."""
    celery_app.user_options["worker"].add(
        click.Option((OPTION,), is_flag=True, help="Run beat in a thread of this worker.")
    )
    celery_app.steps["worker"].add(BeatThread)
