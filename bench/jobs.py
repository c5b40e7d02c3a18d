"""Import throughput: 10,000 rows through a real Celery worker, on SQLite and on PostgreSQL.

Each import is created through the service (as the API does) and timed from the job's
`created_at` (queued) to its `finished_at` (succeeded), both stamped by the database
rows; the worker's own share (`started_at` to `finished_at`) is reported beside it. The
baseline is the same engine's bulk insert of 10,000 todos by `services.seeding` (one Core
`executemany`, as the import's own insert: what remains is reading, checking and the worker).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from flask_migrate import upgrade

from bench import ROOT
from todoscale import create_app
from todoscale.bench import procs
from todoscale.extensions import db
from todoscale.models import Job
from todoscale.services import accounts, jobs, lists, seeding, transfer

ROWS = 10_000
POSTGRES_URL = os.environ.get(
    "TODOSCALE_BENCH_JOBS_POSTGRES_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/todoscale_bench_jobs",
)
REDIS_URL = (
    os.environ.get("TODOSCALE_BENCH_JOBS_REDIS_URL")
    or os.environ.get("TODOSCALE_REDIS_URL")
    or "redis://127.0.0.1:6379/13"
)
# Cheap hashing: the baseline is the insert, not argon2 (seed hashes one password per call).
FAST_HASH = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 64}


def _postgres() -> str | None:
    """A fresh database for this benchmark on the local PostgreSQL, or None if none answers."""
    return procs.fresh_postgres(POSTGRES_URL)


def _redis() -> str | None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return None
    return REDIS_URL


def _file() -> bytes:
    """An export file of 10,000 ordinary todos (a fifth done, a third with a due date)."""
    rows = [
        {
            "list": "Inbox",
            "title": f"Imported todo number {n + 1}",
            "notes": "Some notes about it, as people write them." if n % 2 else "",
            "completed": n % 5 == 0,
            "completed_at": "2026-11-01T10:00:00Z" if n % 5 == 0 else None,
            "due_at": "2026-12-01T09:30:00Z" if n % 3 == 0 else None,
            "created_at": "2026-10-01T08:00:00.123456Z",
            "updated_at": "2026-10-02T08:00:00Z",
        }
        for n in range(ROWS)
    ]
    return transfer.render(rows, "csv")


class Worker(procs.Server):
    """`celery -A todoscale.worker worker` in its own process group."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.hostname = f"bench{os.getpid()}@127.0.0.1"
        argv = [str(procs.BIN / "celery"), "-A", "todoscale.worker", "worker"]
        argv += ["--loglevel", "INFO", "--concurrency", "1", "--hostname", self.hostname]
        super().__init__("celery worker", argv, {**env, "C_FORCE_ROOT": "1"}, log)

    def wait_started(self, timeout: float = 60.0) -> None:
        """Wait for the worker's "ready." line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if f"{self.hostname} ready." in self.log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the worker did not start:\n{self.log.read_text()[-3000:]}")


def _baseline(app: Flask, runs: int) -> list[float]:
    """Seconds of `services.seeding`'s bulk insert of 10,000 todos, per run."""
    seed = []
    with app.app_context():
        for run in range(runs):
            started = time.perf_counter()
            seeding.seed(users=1, todos=ROWS, password="password123", prefix=f"seed{run}x")
            seed.append(time.perf_counter() - started)
    return seed


def _imports(app: Flask, runs: int) -> list[tuple[float, float]]:
    """(queued-to-succeeded, started-to-succeeded) seconds of `runs` imports of 10,000 rows."""
    data = _file()
    timings = []
    with app.app_context():
        for run in range(runs):
            user = accounts.register_user(
                f"importer{run}", f"i{run}@example.com", "not a common one"
            )
            list_id = lists.default_list_id(user)
            job_id = jobs.create_import(user, list_id=list_id, filename="b.csv", data=data).id
            deadline = time.monotonic() + 300
            while True:
                db.session.expire_all()
                job = db.session.get(Job, job_id)
                assert job is not None
                if job.status in ("succeeded", "failed") or time.monotonic() > deadline:
                    break
                db.session.rollback()
                time.sleep(0.02)
            if job.status != "succeeded" or not job.finished_at or not job.started_at:
                raise RuntimeError(f"import {job_id} ended {job.status}: {job.error}")
            timings.append(
                (
                    (job.finished_at - job.created_at).total_seconds(),
                    (job.finished_at - job.started_at).total_seconds(),
                )
            )
            db.session.rollback()
    return timings


def _measure(label: str, env: dict[str, str], runs: int, out: Path) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "INSTANCE_PATH": env["TODOSCALE_INSTANCE_PATH"],
        "SQLALCHEMY_DATABASE_URI": env.get("TODOSCALE_DATABASE_URL") or None,
        "REDIS_URL": env.get("TODOSCALE_REDIS_URL") or None,
        "BROKER_URL": None,
        **FAST_HASH,
    }
    app = create_app(settings)
    with app.app_context():
        upgrade()
        app.extensions["celery"].control.purge()
    baseline = _baseline(app, runs)
    worker = Worker(env, out / f"jobs-worker-{label}.log")
    try:
        worker.wait_started()
        timings = _imports(app, runs)
    finally:
        worker.stop()
        with app.app_context():
            db.engine.dispose()
    seed_s = statistics.median(baseline)
    queued_s = statistics.median(t[0] for t in timings)
    running_s = statistics.median(t[1] for t in timings)
    return {
        "rows": ROWS,
        "baseline_seed_rows_per_second": ROWS / seed_s,
        "import_rows_per_second": ROWS / queued_s,
        "import_worker_rows_per_second": ROWS / running_s,
        "ratio_vs_seed": seed_s / queued_s,
        "worker_ratio_vs_seed": seed_s / running_s,
        "seed_seconds": baseline,
        "import_queued_to_succeeded_seconds": [t[0] for t in timings],
        "import_started_to_succeeded_seconds": [t[1] for t in timings],
    }


def run(*, out: Path, runs: int = 3) -> dict[str, Any]:
    """Measure imports on SQLite (local queue) and on PostgreSQL (Redis queue); print a table."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="todoscale-bench-jobs-") as tmp:
        sqlite_env = {
            "TODOSCALE_INSTANCE_PATH": str(Path(tmp) / "sqlite"),
            "TODOSCALE_ENV": "development",
            # Empty, not inherited: the embedded set-up (SQLite file, local queue).
            "TODOSCALE_DATABASE_URL": "",
            "TODOSCALE_REDIS_URL": "",
            "TODOSCALE_BROKER_URL": "",
            **{f"TODOSCALE_{key}": str(value) for key, value in FAST_HASH.items()},
        }
        figures["SQLite, local queue"] = _measure("sqlite", sqlite_env, runs, out)
        database, broker = _postgres(), _redis()
        if database is None:
            print(f"PostgreSQL at {POSTGRES_URL} does not answer: its import is not measured.")
        else:
            pg_env = {**sqlite_env, "TODOSCALE_INSTANCE_PATH": str(Path(tmp) / "postgresql")}
            pg_env["TODOSCALE_DATABASE_URL"] = database
            if broker:
                pg_env["TODOSCALE_REDIS_URL"] = broker
            label = f"PostgreSQL, {'Redis' if broker else 'local'} queue"
            figures[label] = _measure("postgresql", pg_env, runs, out)
    print(f"\n## Import throughput ({ROWS:,} rows through a Celery worker, median of {runs})\n")
    print(
        "| engine | seed bulk insert rows/s (baseline) | import rows/s, queued to done "
        "| vs baseline | worker's share rows/s | vs baseline |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for label, each in figures.items():
        print(
            f"| {label} | {each['baseline_seed_rows_per_second']:,.0f} "
            f"| {each['import_rows_per_second']:,.0f} | {each['ratio_vs_seed']:.2f}x "
            f"| {each['import_worker_rows_per_second']:,.0f} "
            f"| {each['worker_ratio_vs_seed']:.2f}x |"
        )
    return figures


if __name__ == "__main__":  # `python -m bench.jobs`: this part alone
    results = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S-jobs")
    results.mkdir(parents=True, exist_ok=True)
    (results / "figures.json").write_text(json.dumps(run(out=results), indent=2))
    print(f"\nFigures and worker logs: {results}")
