"""A real Celery worker process for the test app, and a helper to wait for what it does.

The worker shares the test app's database, instance folder and broker (the local SQLite
queue, or the suite's Redis on a server database). It runs in a process group of its own,
so `stop()` and `kill()` reach its pool children too.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from flask import Flask

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
_names = itertools.count(1)


def wait_for(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, message: str = ""
) -> T:
    """Call `predicate` until it returns something truthy and return that; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        time.sleep(interval)


def worker_env(
    app: Flask,
    *,
    lease_seconds: int | None = None,
    sweep_seconds: float | None = None,
    reminder_interval_seconds: float | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a process that sees what `app` sees: database, instance, broker."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TODOSCALE_") or key.startswith("TODOSCALE_TEST_")
    }
    env.update(
        TODOSCALE_ENV="testing",
        TODOSCALE_DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        TODOSCALE_INSTANCE_PATH=app.instance_path,
        # Celery refuses to run as root unless told this is deliberate (containers, CI).
        C_FORCE_ROOT="1",
        PYTHONUNBUFFERED="1",
    )
    for key, setting in (
        ("REDIS_URL", "TODOSCALE_REDIS_URL"),
        ("BROKER_URL", "TODOSCALE_BROKER_URL"),
        ("PUBLIC_URL", "TODOSCALE_PUBLIC_URL"),
        ("SMTP_URL", "TODOSCALE_SMTP_URL"),
    ):
        if app.config.get(key):
            env[setting] = str(app.config[key])
    if lease_seconds is not None:
        env["TODOSCALE_JOB_LEASE_SECONDS"] = str(lease_seconds)
    if sweep_seconds is not None:
        env["TODOSCALE_JOB_SWEEP_SECONDS"] = str(sweep_seconds)
    if reminder_interval_seconds is not None:
        env["TODOSCALE_REMINDER_INTERVAL_SECONDS"] = str(reminder_interval_seconds)
    env.update(extra or {})
    return env


def purge_queue(app: Flask) -> int:
    """Drop every message waiting in the app's broker queue (leftovers of earlier tests)."""
    purged: int = app.extensions["celery"].control.purge()
    return purged


class Worker:
    """`celery -A todoscale.worker worker` (with `-B`, an embedded beat) for the test app."""

    def __init__(
        self,
        app: Flask,
        *,
        beat: bool = False,
        concurrency: int = 1,
        lease_seconds: int | None = None,
        sweep_seconds: float | None = None,
        reminder_interval_seconds: float | None = None,
        env: Mapping[str, str] | None = None,
        pool: str | None = None,
    ) -> None:
        self.name = f"test{os.getpid()}-{next(_names)}@127.0.0.1"
        self.env = worker_env(
            app,
            lease_seconds=lease_seconds,
            sweep_seconds=sweep_seconds,
            reminder_interval_seconds=reminder_interval_seconds,
            extra=env,
        )
        self.argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "todoscale.worker",
            "worker",
            "--loglevel",
            "INFO",
            "--hostname",
            self.name,
            "--concurrency",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
        ]
        if pool:
            self.argv += ["--pool", pool]
        if beat:
            schedule = Path(app.instance_path) / f"celerybeat-{self.name.split('@')[0]}"
            self.argv += ["--beat", "--schedule", str(schedule)]
        fd, log_name = tempfile.mkstemp(prefix="celery-worker-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log_name)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The worker's main process id (also its process group id)."""
        assert self.proc is not None, "the worker has not been started"
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> Worker:
        """Start the worker and wait until it says it is ready to take tasks."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait for the worker's "ready." log line; fail with its log if it dies or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if f"{self.name} ready." in self.log():
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the Celery worker did not become ready:\n{self.log()[-4000:]}")

    def log(self) -> str:
        """Everything the worker wrote so far."""
        return self.log_path.read_text(errors="replace")

    @property
    def running(self) -> bool:
        """Whether the main process is still alive."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group (warm shutdown), SIGKILL whatever is left after `timeout`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the whole group at once: the main process and its pool, mid-task or not."""
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def _signal(self, signum: int) -> None:
        assert self.proc is not None
        # The group outlives its leader: this reaches pool children left behind too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)

    def close(self) -> None:
        """Stop the worker and remove its log."""
        self.stop()
        self.log_path.unlink(missing_ok=True)
