"""Graceful reload and shutdown (issue 13): `make run`'s HTTP server (granian, as `todoscale
serve` starts it) sent SIGHUP again and again, then SIGTERM, under the mixed-traffic load
(tests/chaos/load.py, in the background: at half of the measured capacity under `make chaos`,
at a fixed modest rate in make test) and a bounded stream of real requests besides (reads and
creates, each on a fresh connection, from a few threads). A reload should fail no request
(the figure: granian can drop a connection accepted in the instant of a worker's stop); on
TERM every request already sent must be answered; no acknowledged write may be missing from
the database afterwards.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask

from tests.chaos.faults import Background
from tests.chaos.figures import bounded, report, scale
from tests.chaos.load import USERS, seed_tokens
from tests.chaos.test_slow_clients import _token
from tests.deploy.helpers import free_port_run, stop_group, wait_for
from todoscale import create_app
from todoscale.extensions import db

# Faults of the HTTP server (granian on SQLite in its instance folder), not of the database.
pytestmark = pytest.mark.database_free

STREAMS = 4  # threads sending requests, one at a time each
REQUEST_TIMEOUT = 30.0
# granian stops its workers one after the other, each finishing its requests first.
STOP_SECONDS = 30.0
# How a connection closed by the server before it read the request ends, for the client.
CLOSED_UNANSWERED = {"ConnectionResetError", "BrokenPipeError", "RemoteDisconnected"}


@dataclass
class Server:
    """`todoscale serve --server granian` on a port of its own; its SQLite file and log."""

    address: str
    proc: subprocess.Popen[bytes]
    log: Path
    database: Path

    def app(self) -> Flask:
        """An app of this process on the server's database (to seed it and to audit it)."""
        return create_app({"ENV_NAME": "testing", "INSTANCE_PATH": str(self.log.parent / "auditor"),
                           "SQLALCHEMY_DATABASE_URI": f"sqlite:///{self.database}"})  # fmt: skip

    def reloads_done(self) -> int:
        """How many SIGHUP reloads granian has finished (its last worker replaced)."""
        return self.log.read_text(errors="replace").count("Stopped old worker-")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """granian with make run's defaults (2 workers, SQLite in its instance folder), write
    limits raised: the stream is one client sending far more than a person would."""
    port = free_port_run(1)
    instance = tmp_path / "instance"
    env = {key: value for key, value in os.environ.items() if not key.startswith("TODOSCALE_")}
    env.update(TODOSCALE_INSTANCE_PATH=str(instance), TODOSCALE_ENV="development",
               PORT=str(port), TODOSCALE_REQUEST_LOG="0", TODOSCALE_WORKERS="2",
               TODOSCALE_API_WRITE_LIMIT="100000 per minute")  # fmt: skip
    argv = [sys.executable, "-m", "todoscale.cli", "serve", "--server", "granian"]
    log = tmp_path / "granian.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc, timeout=60)
        yield Server(f"127.0.0.1:{port}", proc, log, instance / "todoscale.db")
    finally:
        stop_group(proc, signal.SIGKILL)


@dataclass
class Stream:
    """What the request threads saw: each request's outcome, when it was sent and when it
    ended, and the ids of the creates the server acknowledged (201)."""

    token: str
    address: str
    outcomes: list[tuple[float, float, str]] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, label: str) -> None:
        host, port = self.address.split(":")
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        number = 0
        while not self.stop.is_set():
            write = number % 2 == 0
            sent = time.monotonic()
            conn = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT)
            try:
                if write:
                    body = json.dumps({"title": f"{label} {number}"})
                    conn.request("POST", "/api/v1/todos", body, headers)
                else:
                    conn.request("GET", "/api/v1/todos?limit=10", headers=headers)
                reply = conn.getresponse()
                raw = reply.read()
                outcome = str(reply.status)
                if write and reply.status == 201:
                    self.acked.append(json.loads(raw)["id"])
            except ConnectionRefusedError:
                outcome = "refused"  # nothing listens: the request was never sent
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
            finally:
                conn.close()
            self.outcomes.append((sent, time.monotonic(), outcome))
            number += 1
            if outcome == "refused":
                time.sleep(0.05)


def _answered(outcome: str) -> bool:
    return outcome.isdigit() and int(outcome) < 500


def _stored(database: Path) -> set[str]:
    with sqlite3.connect(database) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM todos")}


def _slow_post(address: str, token: str, first_half_sent: threading.Event,
               finish: threading.Event, result: list[str]) -> None:  # fmt: skip
    """A create whose body arrives in two halves: in flight across the moment of TERM."""
    host, port = address.split(":")
    body = json.dumps({"title": "sent across TERM"}).encode()
    head = (f"POST /api/v1/todos HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}"
            f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()  # fmt: skip
    with socket.create_connection((host, int(port)), timeout=REQUEST_TIMEOUT) as sock:
        sock.sendall(head + body[:5])
        first_half_sent.set()
        finish.wait(REQUEST_TIMEOUT)
        try:
            sock.sendall(body[5:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError as exc:
            result.append(type(exc).__name__)
            return
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "no answer"
    result.append(status)


@pytest.fixture
def loaded(server: Server, tmp_path: Path) -> Iterator[tuple[Background, Flask]]:
    """The mixed-traffic driver in the background against the server (not started yet), its
    users seeded in the server's database, and an app on that database to audit it."""
    app = server.app()
    tokens = seed_tokens(app, "reload", count=USERS if scale() == "full" else 50)
    try:
        with Background(f"http://{server.address}", tokens, tmp_path / "driver") as load:
            yield load, app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_hup_reloads_fail_no_request_and_term_finishes_those_in_flight(
    server: Server, loaded: tuple[Background, Flask]
) -> None:
    reloads = bounded(fast=1, full=10)
    load, app = loaded
    load.start()  # under make chaos: the capacity search first, then half of that capacity
    stream = Stream(_token(server.address), server.address)
    threads = [threading.Thread(target=stream.run, args=(f"s{n}",)) for n in range(STREAMS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        for number in range(reloads):
            os.kill(server.proc.pid, signal.SIGHUP)
            deadline = time.monotonic() + 60
            while server.reloads_done() < 2 * (number + 1) and time.monotonic() < deadline:
                time.sleep(0.05)  # each of the 2 workers replaced, one after the other
            assert server.reloads_done() >= 2 * (number + 1), server.log.read_text()[-3000:]
        time.sleep(0.5)
        reloaded = time.monotonic()
        # TERM with a request mid-body and the stream running.
        first_half, finish, slow = threading.Event(), threading.Event(), []
        slow_thread = threading.Thread(
            target=_slow_post, args=(server.address, stream.token, first_half, finish, slow)
        )
        slow_thread.start()
        assert first_half.wait(10)
        time.sleep(0.2)
        termed = time.monotonic()
        os.kill(server.proc.pid, signal.SIGTERM)
        time.sleep(0.3)
        finish.set()
        slow_thread.join(REQUEST_TIMEOUT + 5)
        with contextlib.suppress(subprocess.TimeoutExpired):  # reported below
            server.proc.wait(timeout=STOP_SECONDS)
        stopped = time.monotonic()
    finally:
        stream.stop.set()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT + 5)
        load.stop()

    exited = server.proc.poll() is not None
    # The driver's requests sent before TERM (after it, nothing listens once the server is
    # gone), and those of them in flight at TERM that got no answer.
    driven, counts = load.figure(app, until=termed)
    at_term = [entry for entry in load.load()["timeline"]
               if entry[0] < load.at(termed) < entry[1]]  # fmt: skip
    unanswered_at_term = sum(status == 0 for _began, _end, _ok, status in at_term)
    during_reload = [o for o in stream.outcomes if o[0] < reloaded]
    failed_reload = Counter(outcome for _, _, outcome in during_reload if not _answered(outcome))
    in_flight = [o for o in stream.outcomes if o[0] < termed < o[1]]
    lost_in_flight = Counter(outcome for _, _, outcome in in_flight if not _answered(outcome))
    slow_answered = slow == ["201"]
    lost = len(set(stream.acked) - _stored(server.database))
    figure = (
        f"{sum(failed_reload.values())}_failed_of_{len(during_reload)}_over_{reloads}_HUP"
        f"{dict(failed_reload) or ''},{sum(lost_in_flight.values())}_of_{len(in_flight)}"
        f"_in_flight_at_TERM_unanswered{dict(lost_in_flight) or ''},mid_body_request:"
        f"{slow[0] if slow else 'none'},"
        f"{f'stopped_in_{stopped - termed:.1f}s' if exited else f'NOT_stopped_in_{STOP_SECONDS}s'},"
        f"{lost}_lost_of_{len(stream.acked)}_acknowledged,{driven},"
        f"{unanswered_at_term}_of_{len(at_term)}_driven_in_flight_at_TERM_unanswered"
    )
    held = (
        exited and not failed_reload and not lost_in_flight and slow_answered and not lost
        and not counts["5xx"] and not counts["socket_errors"] and not counts["lost"]
    )  # fmt: skip
    report("graceful-reload-and-shutdown", figure.replace(" ", ""),
           "0_failed_on_HUP,in_flight_finished_on_TERM,0_lost_acknowledged", held=held)  # fmt: skip
    assert exited, f"the server did not stop within {STOP_SECONDS} s of SIGTERM"
    # A reload may lose only the request of a connection the old worker had accepted an
    # instant before its stop, its bytes not read yet: granian's stop closes every connection
    # with no request read (hyper's graceful shutdown), including one whose request is on its
    # way. Measured: 0 to 3 in 10 HUPs, each within 50 ms of "Stopping old worker" (about
    # 50,000 requests; `--http 1` instead of granian's `auto` does not change it). So the
    # count is the figure (held=NO when any), and what must never happen is asserted: a
    # refused connection (nothing listening) or an error answer.
    assert set(failed_reload) <= CLOSED_UNANSWERED, failed_reload
    # Reported (held=NO), not asserted: a stream request in flight at TERM can be reset
    # unanswered (1 of 4 in one run of 10 HUPs, 0 in the others), most likely one the kernel
    # still held in the listening socket's queue when granian's last worker closed it:
    # granian does not drain that queue before it stops, nor does gunicorn
    # (benoitc/gunicorn#2409). The request it had accepted, half its body sent before TERM,
    # is asserted answered.
    assert slow_answered, slow
    assert lost == 0
    assert counts["5xx"] == 0 and counts["lost"] == 0 and counts["partial"] == 0, counts


def _worker_pids(log: Path, number: int) -> list[int]:
    """The process ids granian gave worker-`number`, in the order it spawned them."""
    mark = f"Spawning worker-{number} with PID: "
    text = log.read_text(errors="replace")
    return [int(line.split(mark)[1].split('"')[0]) for line in text.splitlines() if mark in line]


def test_a_term_while_a_respawned_worker_loads_the_app_stops_the_server(server: Server) -> None:
    """granian respawns a dead worker at once; a TERM that comes while the new one still loads
    the app was swallowed there (the handler it inherits from the main process), and the
    shutdown that followed waited for it forever."""
    first = _worker_pids(server.log, 1)
    os.kill(first[-1], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while len(_worker_pids(server.log, 1)) == len(first) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(_worker_pids(server.log, 1)) > len(first), "granian did not respawn the worker"
    termed = time.monotonic()
    os.kill(server.proc.pid, signal.SIGTERM)  # the new worker is loading the app (seconds)
    with contextlib.suppress(subprocess.TimeoutExpired):  # reported below
        server.proc.wait(timeout=STOP_SECONDS)
    exited = server.proc.poll() is not None
    report(
        "term-while-a-worker-loads",
        f"stopped_in_{time.monotonic() - termed:.1f}s"
        if exited
        else f"NOT_stopped_in_{STOP_SECONDS:.0f}s",
        f"stopped_in_<={STOP_SECONDS:.0f}s",
        held=exited,
    )
    assert exited, f"the server did not stop within {STOP_SECONDS} s of SIGTERM"
