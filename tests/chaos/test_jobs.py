"""Jobs under fire (issue 13): a Celery pool child SIGKILLed in the middle of its task, again
and again, and the whole worker SIGKILLed with jobs reserved, then started again. Every job
must take effect exactly once: each job imports its own rows, and the test counts them in
the database afterwards (0 would be a lost job, twice its rows a job run twice).

The worker is a real `celery worker` (prefork pool: the children are processes the test can
kill), on the suite's broker: the local SQLite queue in the SQLite pass, the suite's Redis in
the PostgreSQL pass. Beat runs as a process of its own, so the worker's only children are its
pool; every process is stopped by its id. All the while the mixed-traffic load
(tests/chaos/load.py, in the background: at half of the measured capacity under `make chaos`,
at a fixed modest rate in make test) runs against a real server on the same database, and its
acknowledged writes are audited too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.api.test_jobs import post_import
from tests.chaos.conftest import ApiServer
from tests.chaos.faults import Background
from tests.chaos.figures import bounded, report, scale
from tests.chaos.load import USERS, seed_tokens
from tests.conftest import Account
from tests.workers import ROOT, Worker, wait_for, worker_env
from todoscale.extensions import db
from todoscale.models import Job, Todo
from todoscale.models.jobs import FINISHED, RUNNING, SUCCEEDED
from todoscale.services import transfer

# Rows per import: enough that a job runs for a moment a kill can land in, few enough that a
# hundred of them stay quick. Each row's title names its job, so effects can be counted.
ROWS = 300
NOTE = "n" * 200
# A killed child's job waits for its lease to run out; the sweep then sends it again.
LEASE_SECONDS = 2
SWEEP_SECONDS = 1.5


def _import_file(job_number: int) -> bytes:
    blank = dict.fromkeys(transfer.FIELDS)
    rows = [{**blank, "list": "L", "title": f"job{job_number} row{row}", "notes": NOTE}
            for row in range(ROWS)]  # fmt: skip
    return transfer.render(rows, "csv")


def _queue_imports(account: Account, list_id: str, count: int) -> dict[str, int]:
    """Queue `count` imports through the API; their job ids, each with its number."""
    jobs = {}
    for number in range(count):
        answer = post_import(account, list_id, _import_file(number), f"job{number}.csv")
        assert answer.status_code == 202, answer.get_json()
        jobs[answer.get_json()["id"]] = number
    return jobs


def _states(app: Flask, ids: list[str]) -> dict[str, tuple[str, int]]:
    """Each job's status and attempts, as the database holds them now."""
    with app.app_context():
        rows = db.session.execute(
            select(Job.id, Job.status, Job.attempts).where(Job.id.in_(ids))
        ).all()
        db.session.remove()
    return {row.id: (row.status, row.attempts) for row in rows}


def _effects(app: Flask, list_id: str, jobs: dict[str, int]) -> dict[int, int]:
    """How many rows each job left in the list (ROWS once, 0 never, 2 x ROWS twice)."""
    with app.app_context():
        titles = db.session.scalars(select(Todo.title).where(Todo.list_id == list_id)).all()
        db.session.remove()
    counts = dict.fromkeys(jobs.values(), 0)
    for title in titles:
        counts[int(title.split()[0].removeprefix("job"))] += 1
    return counts


def _all_finished(app: Flask, ids: list[str]) -> bool:
    return all(status in FINISHED for status, _ in _states(app, ids).values())


def _children(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (the worker's pool), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (name) "
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


class Beat:
    """`celery beat` of its own, sending the stalled-job sweep every SWEEP_SECONDS."""

    def __init__(self, app: Flask, folder: Path) -> None:
        env = worker_env(app, lease_seconds=LEASE_SECONDS, sweep_seconds=SWEEP_SECONDS)
        argv = ["-m", "celery", "-A", "todoscale.worker", "beat", "--loglevel", "INFO",
                "--schedule", str(folder / "beat-schedule")]  # fmt: skip
        self.log = folder / "beat.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *argv],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def beat(app: Flask, tmp_path: Path) -> Iterator[Beat]:
    """A beat process for the test; killed by its id at the end."""
    running = Beat(app, tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def workers(start_worker: Callable[..., Worker]) -> Callable[[int], Worker]:
    """Prefork workers with a short lease, started on demand (conftest's `start_worker`:
    the queue purged, every one killed at the end)."""
    quiet = {"TODOSCALE_LOG_LEVEL": "WARNING"}
    return lambda concurrency: start_worker(
        timeout=60, concurrency=concurrency, lease_seconds=LEASE_SECONDS,
        sweep_seconds=SWEEP_SECONDS, env=quiet, pool="prefork",
    )  # fmt: skip


def _exactly_once(effects: dict[int, int]) -> tuple[int, int, int]:
    """(jobs whose rows are all there once, jobs with none, jobs with too many)."""
    once = sum(count == ROWS for count in effects.values())
    never = sum(count == 0 for count in effects.values())
    return once, never, len(effects) - once - never


def _kill_running_children(app: Flask, worker: Worker, ids: list[str], kills: int,
                           spacing: int) -> int:  # fmt: skip
    """SIGKILL the pool child in the middle of a job's first attempt, every `spacing` jobs,
    `kills` times; return how many kills landed mid-task (the job still running after it).
    A job that ran before its kill could land is passed over for the next one."""
    landed, index = 0, 0
    deadline = time.monotonic() + 60 + 5 * len(ids)
    while landed < kills and index < len(ids) and time.monotonic() < deadline:
        job_id = ids[index]
        status, attempts = _states(app, [job_id])[job_id]
        if status in FINISHED or attempts > 1:
            index += 1  # too late for this one
            continue
        if status != RUNNING:
            time.sleep(0.002)
            continue
        for child in _children(worker.pid):
            os.kill(child, signal.SIGKILL)
        # A dead child cannot commit: still running now means the kill landed mid-task.
        if _states(app, [job_id])[job_id] == (RUNNING, 1):
            landed += 1
            index += spacing
        else:
            index += 1
    return landed


@pytest.fixture
def load(app: Flask, api_server: ApiServer, tmp_path: Path) -> Iterator[Background]:
    """The mixed-traffic driver in the background against the suite's server (not started
    yet), its users seeded; killed by its id at the end if the test did not stop it."""
    tokens = seed_tokens(app, "jobs", count=USERS if scale() == "full" else 50)
    with Background(api_server.url, tokens, tmp_path / "driver") as running:
        yield running


def test_pool_children_then_the_whole_worker_killed_leave_every_job_done_exactly_once(
    app: Flask, alice: Account, workers: Callable[..., Worker], beat: Beat, load: Background
) -> None:
    count, kills = bounded(fast=4, full=100), bounded(fast=1, full=20)
    load.start()  # under make chaos: the capacity search first, then half of that capacity
    target = alice.post("/api/v1/lists", json={"name": "Imports"}).get_json()["id"]
    jobs = _queue_imports(alice, target, count)
    ids = list(jobs)
    first = workers(concurrency=1)  # one child: the one running the job
    half = ids[: count // 2]

    # Over the first half: a pool child killed mid-task every few jobs.
    landed = _kill_running_children(app, first, ids, kills, spacing=max(1, len(half) // kills))

    def half_done() -> bool:
        return sum(status in FINISHED for status, _ in _states(app, ids).values()) >= len(half)

    wait_for(half_done, timeout=60 + 5 * count, interval=0.02,
             message=f"half the jobs did not finish:\n{first.log()[-3000:]}")  # fmt: skip
    # Then the whole worker, SIGKILLed with what it holds: a job running, one reserved.
    first.kill()
    left = sum(status not in FINISHED for status, _ in _states(app, ids).values())
    workers(concurrency=1)
    wait_for(lambda: _all_finished(app, ids), timeout=60 + 5 * count, interval=0.1,
             message="not every job finished after the restart")  # fmt: skip
    load.stop()
    driven, driver = load.figure(app)

    states = _states(app, ids)
    succeeded = sum(status == SUCCEEDED for status, _ in states.values())
    once, never, more = _exactly_once(_effects(app, target, jobs))
    report(
        "celery-child-and-worker-killed",
        f"{once}/{count}_job_effects_exactly_once({never}_never,{more}_more),"
        f"{succeeded}_succeeded,{landed}_of_{kills}_child_kills_mid_task,"
        f"worker_killed_with_{left}_unfinished,{driven}",
        f"{count}/{count}_exactly_once,0_x_5xx,0_socket_errors,0_lost_acknowledged",
        held=once == count and landed == kills and left > 0
        and not driver["5xx"] and not driver["socket_errors"] and not driver["lost"],
    )  # fmt: skip
    assert landed == kills, "a child kill came too late: it tested nothing"
    assert left > 0, "every job was done before the worker was killed: it tested nothing"
    assert (once, never, more) == (count, 0, 0)
    assert succeeded == count
    assert driver["lost"] == 0 and driver["partial"] == 0, driver
