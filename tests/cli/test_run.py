"""`todoscale run`, for real: web, Socket.IO and a Celery worker from one command.

Embedded defaults (SQLite and the local queue in a temporary instance folder, no Redis), on a
free port of 127.0.0.1. Each run is stopped as a user stops it (SIGTERM to its group), and
every process it started must be gone afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import socketio

from tests.deploy.helpers import free_port_run, wait_for
from todoscale.bench import procs

# Embedded defaults in an instance folder of its own: the suite's database is not used.
pytestmark = pytest.mark.database_free

PASSWORD = "run password 1"
START_SECONDS = 120  # generous: a loaded 2-core machine starts four programs slowly
JOB_SECONDS = 60
STOP_SECONDS = 90


class Run:
    """One `todoscale run` process tree on `port`, logging to `log`."""

    def __init__(self, instance: Path, port: int, live_port: int) -> None:
        self.instance = instance
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # The Socket.IO service, beside the HTTP server on a port of its own.
        self.live_url = f"http://127.0.0.1:{live_port}"
        self.live_port = live_port
        self.log = instance / "run.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start `todoscale run` and wait until it answers."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("TODOSCALE_")}
        env.update(
            TODOSCALE_ENV="development",
            TODOSCALE_INSTANCE_PATH=str(self.instance),
            TODOSCALE_LOG_LEVEL="INFO",
            PORT=str(self.port),
            TODOSCALE_SOCKETIO_PORT=str(self.live_port),
            # Celery refuses root unless told it is deliberate (containers, CI).
            C_FORCE_ROOT="1",
            PYTHONUNBUFFERED="1",
        )
        # Appending: supervisord reopens its standard output for each program.
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "todoscale.cli", "run"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for(f"{self.url}/healthz", self.proc, timeout=START_SECONDS)
            wait_for(f"{self.live_url}/healthz", self.proc, timeout=START_SECONDS)
        except AssertionError as exc:
            self.stop()
            raise AssertionError(f"{exc}\n{self.log.read_text()[-4000:]}") from exc

    def descendants(self) -> list[int]:
        """Every live process below `todoscale run` (supervisord's programs and theirs)."""
        assert self.proc is not None
        children: dict[int, list[int]] = {}
        for pid, fields in procs.processes():
            children.setdefault(int(fields[1]), []).append(pid)
        found, todo = [], [self.proc.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        return [pid for pid in found if procs.alive(pid)]

    def stop(self) -> list[int]:
        """SIGTERM to the process group, as a service manager does; the processes it had.

        Whatever outlives STOP_SECONDS is killed by id (the programs run in process groups of
        their own), so that a failing test leaves nothing behind.
        """
        if self.proc is None or self.proc.poll() is not None:
            return []
        processes = self.descendants()
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        deadline = time.monotonic() + 5
        while any(procs.alive(pid) for pid in processes) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in processes:
            if procs.alive(pid):
                os.kill(pid, signal.SIGKILL)
        return processes

    def supervisorctl(self, *args: str) -> str:
        """Run supervisorctl against this run's supervisord."""
        conf = self.instance / "run" / "supervisord.conf"
        argv = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf), *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        return done.stdout


def call(
    run: Run, method: str, path: str, body: Any = None, token: str = "", basic: str = ""
) -> tuple[int, Any]:
    """One JSON request to the run's web server; the status and the decoded body."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(run.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def register(run: Run, name: str) -> str:
    """A new user's bearer token."""
    user = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    status, body = call(run, "POST", "/api/v1/users", user)
    assert status == 201, body
    status, body = call(run, "POST", "/api/v1/tokens", basic=f"{name}:{PASSWORD}")
    assert status == 201, body
    token: str = body["token"]
    return token


def finished_job(run: Run, token: str, job_id: str) -> dict[str, Any]:
    """Poll the job until it is done (or fail after JOB_SECONDS)."""
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        status, job = call(run, "GET", f"/api/v1/jobs/{job_id}", token=token)
        assert status == 200, job
        if job["status"] in {"succeeded", "failed"}:
            return dict(job)
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} after {JOB_SECONDS} s")


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    """A `todoscale run` to start; stopped (every process killed by id if need be) at the end."""
    first = free_port_run(2)
    started = Run(tmp_path, first, first + 1)
    try:
        yield started
    finally:
        started.stop()


def _post(run: Run, token: str, title: str) -> tuple[str, str]:
    """Create a todo on a fresh connection; its id and the HTTP process that answered."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    body = json.dumps({"title": title}).encode()
    request = urllib.request.Request(
        run.url + "/api/v1/todos", data=body, method="POST", headers=headers
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        return json.loads(response.read())["id"], response.headers["X-Instance-ID"]


def _posts_counted(metrics: str) -> float:
    """The `POST /api/v1/todos` requests in a scrape, summed over its series."""
    prefix = 'todoscale_http_request_duration_seconds_count{endpoint="/api/v1/todos",method="POST"'
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(prefix)
    )


def test_one_command_serves_the_api_live_updates_and_jobs_and_stops_whole(run):
    run.start()
    token = register(run, "ann")
    created: list[str] = []
    jobs: list[dict[str, Any]] = []
    all_created = threading.Event()
    job_done = threading.Event()
    client = socketio.Client(reconnection=False)
    titles = [f"live {n}" for n in range(40)]

    @client.on("todo.created")
    def _on_created(data: dict[str, Any]) -> None:
        created.append(data["id"])
        if len(created) == len(titles):
            all_created.set()

    @client.on("job.updated")
    def _on_job(data: dict[str, Any]) -> None:
        jobs.append(data)
        if data["status"] == "succeeded":
            job_done.set()

    client.connect(run.live_url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    try:
        # Made by every HTTP process (granian's workers), each through the relay.
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda title: _post(run, token, title), titles))
        assert len({instance for _, instance in answers}) >= 2, answers
        assert all_created.wait(20), f"{len(created)} of {len(titles)} todo.created arrived"
        assert sorted(created) == sorted(todo_id for todo_id, _ in answers)
        # /metrics (open on loopback in the embedded default) counts every worker's requests.
        with urllib.request.urlopen(run.url + "/metrics", timeout=30) as response:
            assert _posts_counted(response.read().decode()) == len(titles)

        # ... and by the Celery worker: the export's progress.
        status, job = call(run, "POST", "/api/v1/exports", {"format": "json"}, token=token)
        assert status == 202, job
        assert finished_job(run, token, job["id"])["status"] == "succeeded"
        assert job_done.wait(20), f"no job.updated 'succeeded' among {jobs}"
    finally:
        client.disconnect()

    assert run.proc is not None
    processes = run.descendants()
    os.killpg(run.proc.pid, signal.SIGTERM)
    # supervisord's programs: granian and its workers, the Socket.IO service (gunicorn's
    # gevent worker without a master: deploy/lone_worker.py), celery (its pool and beat are
    # threads of it: tasks.beat).
    assert len(processes) >= 5, processes
    assert "beat: Starting..." in run.log.read_text()
    assert run.proc.wait(timeout=STOP_SECONDS) == 0, run.log.read_text()[-3000:]
    # Each program stopped on its own (a clean exit), none killed after its grace period.
    log = run.log.read_text()
    for program in ("web", "socketio", "worker"):
        assert f"stopped: {program} (exit status 0)" in log, log[-3000:]


def test_a_job_queued_while_the_worker_is_down_runs_after_a_restart(run):
    run.start()
    token = register(run, "bea")
    assert "worker: stopped" in run.supervisorctl("stop", "todoscale:worker")

    status, job = call(run, "POST", "/api/v1/exports", {"format": "csv"}, token=token)
    assert status == 202, job
    time.sleep(1.5)  # the web server is up, the queue polled: nothing may run it now
    assert call(run, "GET", f"/api/v1/jobs/{job['id']}", token=token)[1]["status"] == "queued"
    # Everything stops: the job exists only as its row and its message in the local queue.
    run.stop()

    run.start()
    assert finished_job(run, token, job["id"])["status"] == "succeeded"
