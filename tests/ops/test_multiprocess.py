"""/metrics across real worker processes of granian and gunicorn: sums, dead workers, files."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask_migrate import upgrade

from tests.deploy.helpers import free_port_run, stop_group, wait_for
from todoscale import create_app
from todoscale.deploy import servers
from todoscale.extensions import db
from todoscale.ops import groups

APP = "tests.ops.servedapp:app"
HEALTH = 'todoscale_http_request_duration_seconds_count{endpoint="/healthz",method="GET"'


def _migrate(env: dict[str, str]) -> None:
    """The schema, as `todoscale serve` migrates it first (here, in this process: faster)."""
    # The testing environment: another would configure logging for the whole test process.
    app = create_app({"ENV_NAME": "testing", "INSTANCE_PATH": env["TODOSCALE_INSTANCE_PATH"],
                      "SQLALCHEMY_DATABASE_URI": env.get("TODOSCALE_DATABASE_URL")})  # fmt: skip
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "TODOSCALE_INSTANCE_PATH": str(tmp_path),
        "TODOSCALE_ENV": "development",
        "TODOSCALE_REQUEST_LOG": "0",
        "TODOSCALE_WORKERS": "2",
        "PORT": str(port),
        "TEST_HOLD_DIR": str(tmp_path),
    }
    if os.environ.get("TODOSCALE_TEST_DATABASE_URL"):  # the PostgreSQL pass serves from it
        env["TODOSCALE_DATABASE_URL"] = os.environ["TODOSCALE_TEST_DATABASE_URL"]
    env.pop(groups.MULTIPROC_ENV, None)
    return env


def _start(
    server: str, tmp_path: Path, port: int, options: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    env = _env(tmp_path, port)
    _migrate(env)
    if server == "granian":  # todoscale.prefork owns the group's folder, before granian starts
        argv = [*servers.granian_argv(env, tmp_path)[:-1], APP]
    else:  # the package's gunicorn.conf.py sets the group up in gunicorn's master
        argv = [*servers.gunicorn_argv(None)[:-1], *options, APP]
    with (tmp_path / f"{server}.log").open("wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    wait_for(f"http://127.0.0.1:{port}/healthz", proc, timeout=90)
    return proc


def _get(url: str) -> tuple[str, str]:
    # A new connection each time, so both workers get requests.
    request = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers["X-Instance-ID"], response.read().decode()


def _value(text: str, prefix: str) -> float:
    """The sum of every sample whose line starts with `prefix` (all services, statuses)."""
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def _both_workers_up(base: str) -> None:
    """Poll until two workers have answered (the second may still be importing the app)."""
    seen: set[str] = set()
    deadline = time.monotonic() + 90
    with ThreadPoolExecutor(8) as pool:
        while len(seen) < 2:
            assert time.monotonic() < deadline, f"only {seen} answered"
            seen |= set(pool.map(lambda _: _get(f"{base}/healthz")[0], range(16)))


def _held(url: str) -> None:
    with contextlib.suppress(OSError):  # its worker is killed under it
        _get(url)


@pytest.fixture(params=["granian", "gunicorn"])
def server(request, tmp_path):
    port = free_port_run(1)
    proc = _start(request.param, tmp_path, port)
    yield f"http://127.0.0.1:{port}", proc, tmp_path
    (tmp_path / "release").write_text("go")
    stop_group(proc)


def test_counters_sum_over_workers_and_a_sigkilled_workers_gauges_go(server):
    base, _proc, folder = server
    _both_workers_up(base)
    before = _value(_get(f"{base}/metrics")[1], HEALTH)
    with ThreadPoolExecutor(16) as pool:  # at once: one idle worker could take them all
        served_by = set(pool.map(lambda _: _get(f"{base}/healthz")[0], range(200)))

    scrapes = [_value(_get(f"{base}/metrics")[1], HEALTH) for _ in range(5)]

    assert len(served_by) >= 2, "both workers should have served"
    assert scrapes == [before + 200] * 5

    held = threading.Thread(target=_held, args=(f"{base}/test/hold",), daemon=True)
    held.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not [p for p in folder.iterdir() if p.name.isdigit()]:
        time.sleep(0.05)
    holder = int(next(p.name for p in folder.iterdir() if p.name.isdigit()))
    text = _get(f"{base}/metrics")[1]
    assert _value(text, "todoscale_http_requests_in_flight") == 2  # the held one and this scrape
    total = _value(text, "todoscale_http_request_duration_seconds_count")

    os.kill(holder, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while groups.alive(holder):  # SIGKILL is delivered asynchronously: wait for the death
        assert time.monotonic() < deadline
        time.sleep(0.01)
    while True:  # the server answers again once it has noticed (granian respawns)
        try:
            text = _get(f"{base}/metrics")[1]
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.1)

    assert _value(text, "todoscale_http_requests_in_flight") == 1  # only this scrape
    assert _value(text, "todoscale_http_request_duration_seconds_count") >= total + 1
    assert not list(folder.glob(f"metrics/*/gauge_livesum_{holder}.db"))


def test_the_folder_stays_bounded_after_100_worker_restarts(tmp_path):
    port = free_port_run(1)
    # Preloaded, so that a replacement forks at once; each worker is SIGKILLed after one
    # request (a crash: no exit hook of its own runs, only the master's child_exit).
    proc = _start("gunicorn", tmp_path, port, ("--preload",))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            pid = _served_then_killed(base)
        text = _get(f"{base}/metrics")[1]
    finally:
        stop_group(proc)
    assert _value(text, HEALTH) >= 100
    assert _value(text, "todoscale_worker_exits_total") >= 99  # the last may not be reaped yet
    (folder,) = groups.groups(tmp_path / "metrics")
    files = [p for p in folder.iterdir() if re.match(r".+_\d+\.(db|json)$", p.name)]
    pids = {groups.pid_of(p) for p in files}
    # The two live workers, the master (it made files when it preloaded the app), and the
    # last one killed if its replacement had not swept yet.
    assert len(pids) <= 4, f"files of {len(pids)} pids left: {sorted(p.name for p in files)}"
    assert pid not in pids or len(pids) <= 4


def _served_then_killed(base: str) -> int:
    """One request; then SIGKILL the worker that served it and wait for its death."""
    deadline = time.monotonic() + 30
    while True:
        try:
            instance, _ = _get(f"{base}/healthz")
            break
        except OSError:  # between a kill and the replacement, the other worker answers
            assert time.monotonic() < deadline
            time.sleep(0.02)
    pid = int(instance.rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    while groups.alive(pid):
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return pid
