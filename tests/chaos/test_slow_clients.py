"""Slow clients (issue 13): a slowloris attack (connections that trickle their headers a line
at a time) and slow POST bodies (a byte a second), against `make run`'s HTTP server (granian,
2 workers x its blocking threads, as `todoscale serve` starts it) and against the shipped
nginx site in front of it, while a probe sends ordinary requests (the reference read, on a
fresh connection each) and measures how many are answered and how fast.

The attack and the probe stay on loopback, are bounded in time and connections, and every
process is stopped by its id.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.chaos.figures import bounded, report
from tests.conftest import skip_or_fail
from tests.deploy.helpers import free_port_run, stop_group, wait_for
from todoscale.deploy.nginx import STATIC_DIR, Site, main_config, render

# Faults of the HTTP servers, not of the database (make run's granian on SQLite in its
# instance folder, nginx in front of it).
pytestmark = pytest.mark.database_free

PROBE_TIMEOUT = 5.0  # a probe not answered within this counts as not answered


def _raise_open_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 16384):  # the attack holds thousands of sockets; the servers inherit it
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 16384), hard))


@pytest.fixture
def granian(tmp_path: Path) -> Iterator[str]:
    """`todoscale serve` with make run's defaults (granian, SQLite in its instance folder)."""
    _raise_open_files()
    port = free_port_run(1)
    env = {key: value for key, value in os.environ.items() if not key.startswith("TODOSCALE_")}
    env.update(TODOSCALE_INSTANCE_PATH=str(tmp_path / "instance"), TODOSCALE_ENV="development",
               PORT=str(port), TODOSCALE_REQUEST_LOG="0")  # fmt: skip
    argv = [sys.executable, "-m", "todoscale.cli", "serve", "--server", "granian"]
    with (tmp_path / "granian.log").open("wb") as log:
        proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc, timeout=60)
        yield f"127.0.0.1:{port}"
    finally:
        stop_group(proc, signal.SIGTERM)


@pytest.fixture
def nginx(granian: str, tmp_path: Path) -> Iterator[str]:
    """The shipped nginx site (plain HTTP) in front of the server, as `cluster up` runs it.
    Its per-address request rate is raised: the attack and the probe share one loopback
    address, which the limit would otherwise (rightly) throttle as one client."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else ""
    )
    if not binary:
        skip_or_fail("nginx is not installed (Debian's package nginx)")
    port = free_port_run(1)
    prefix = tmp_path / "nginx"
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    site = Site(app_servers=[granian], socketio_servers=[granian], http_listen=f"127.0.0.1:{port}",
                tls=False, static_dir=str(STATIC_DIR), access_log=str(prefix / "logs/access.log"),
                limit_rate="100000r/s", limit_burst=100000)  # fmt: skip
    (prefix / "site.conf").write_text(render(site))
    (prefix / "nginx.conf").write_text(main_config(prefix / "site.conf", prefix))
    argv = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc, timeout=30)
        yield f"127.0.0.1:{port}"
    finally:
        stop_group(proc, signal.SIGQUIT)


def _token(address: str) -> str:
    """A new user's bearer token, with a list of ten todos to read."""
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    name = f"probe{time.monotonic_ns() % 10**9}"
    body = json.dumps({"username": name, "email": f"{name}@example.com",
                       "password": "long enough pw"})  # fmt: skip
    conn.request("POST", "/api/v1/users", body, {"Content-Type": "application/json"})
    reply = conn.getresponse()
    assert reply.status == 201, reply.read()
    reply.read()
    basic = base64.b64encode(f"{name}:long enough pw".encode()).decode()
    conn.request("POST", "/api/v1/tokens", headers={"Authorization": f"Basic {basic}"})
    reply = conn.getresponse()
    token: str = json.loads(reply.read())["token"]
    assert reply.status == 201
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for number in range(10):
        conn.request("POST", "/api/v1/todos", json.dumps({"title": f"t{number}"}), headers)
        reply = conn.getresponse()
        assert reply.status == 201, reply.read()
        reply.read()
    conn.close()
    return token


async def _trickle(
    host: str,
    port: int,
    until: float,
    opening: bytes,
    drip: Callable[[], bytes],
    pace: float,
    opened: list[int],
    kind: int,
) -> None:
    """Send `opening`, then `drip()` every `pace` seconds until `until`; again on a new
    connection whenever the server closes this one (counted in `opened[kind]`)."""
    while time.monotonic() < until:
        try:
            _reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        opened[kind] += 1
        try:
            writer.write(opening)
            while time.monotonic() < until:
                await writer.drain()
                await asyncio.sleep(pace)
                writer.write(drip())
        except OSError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _slowloris(host: str, port: int, until: float, opened: list[int]) -> Awaitable[None]:
    """A request whose headers never end: a header line every 2 s."""
    opening = b"GET /api/v1/todos?limit=10 HTTP/1.1\r\nHost: x\r\n"
    line = lambda: b"X-Slow-%d: y\r\n" % int(time.monotonic())  # noqa: E731
    return _trickle(host, port, until, opening, line, 2, opened, 0)


def _slow_body(
    host: str, port: int, token: str, until: float, opened: list[int]
) -> Awaitable[None]:
    """A POST announcing 100 kB of body and sending a byte a second."""
    opening = (b"POST /api/v1/todos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
               b"\r\nContent-Length: 100000\r\nAuthorization: Bearer "
               + token.encode() + b"\r\n\r\n{")  # fmt: skip
    return _trickle(host, port, until, opening, lambda: b" ", 1, opened, 1)


def _attack(address: str, token: str, seconds: float, lorises: int, bodies: int) -> list[int]:
    """Run the attack for `seconds` in this thread; connections opened (headers, bodies)."""
    host, port = address.split(":")
    until = time.monotonic() + seconds
    opened = [0, 0]

    async def everything() -> None:
        tasks = [_slowloris(host, int(port), until, opened) for _ in range(lorises)]
        tasks += [_slow_body(host, int(port), token, until, opened) for _ in range(bodies)]
        await asyncio.gather(*tasks)

    asyncio.run(everything())
    return opened


def _probe(address: str, token: str, stop: threading.Event) -> list[float | None]:
    """The reference read on a fresh connection, again and again: each one's seconds, or
    None when it was not answered with a 200 within PROBE_TIMEOUT."""
    host, port = address.split(":")
    timings: list[float | None] = []
    while not stop.is_set():
        started = time.monotonic()
        conn = http.client.HTTPConnection(host, int(port), timeout=PROBE_TIMEOUT)
        try:
            conn.request(
                "GET", "/api/v1/todos?limit=10", headers={"Authorization": f"Bearer {token}"}
            )
            ok = conn.getresponse().status == 200
        except OSError:
            ok = False
        finally:
            conn.close()
        timings.append(time.monotonic() - started if ok else None)
        time.sleep(0.02)
    return timings


def _under_attack(address: str, target: str) -> None:
    token = _token(address)
    seconds = bounded(fast=12, full=60)
    lorises, bodies = bounded(fast=300, full=2000), bounded(fast=32, full=256)
    stop = threading.Event()
    timings: list[float | None] = []
    probe = threading.Thread(target=lambda: timings.extend(_probe(address, token, stop)))
    time.sleep(0.1)
    probe.start()
    opened = _attack(address, token, seconds, lorises, bodies)
    stop.set()
    probe.join(timeout=PROBE_TIMEOUT + 5)
    answered = sorted(t for t in timings if t is not None)
    share = len(answered) / max(len(timings), 1)
    p99 = answered[int(len(answered) * 0.99) - 1] if answered else float("inf")
    report(
        f"slow-clients-{target}",
        f"{share:.2%}_of_{len(timings)}_probes_answered,p99_{p99 * 1000:.0f}ms"
        f"_under_{lorises}_slowloris_and_{bodies}_slow_bodies_for_{seconds}s"
        f"(connections_opened:{opened[0]}+{opened[1]})",
        ">=99.9%_answered,p99<=1s",
        held=share >= 0.999 and p99 <= 1.0,
    )
    assert len(timings) >= seconds * 5, f"the probe ran only {len(timings)} times"
    assert share >= 0.999, f"{len(timings) - len(answered)} of {len(timings)} probes unanswered"
    assert p99 <= 1.0, f"p99 {p99:.2f} s"


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="a finding, not fixed: granian reads a WSGI body on the blocking thread that runs "
    "the app, with no timeout (emmett-framework/granian#728, wontfix), so as many slow bodies "
    "as there are blocking threads (2 workers x 4) stall every other request; nginx in front "
    "buffers bodies and holds (the test below). strict: once it holds, this marker must go",
)
def test_make_runs_server_answers_others_during_a_slow_client_attack(granian: str) -> None:
    _under_attack(granian, "granian")


def test_nginx_answers_others_during_a_slow_client_attack(nginx: str) -> None:
    _under_attack(nginx, "nginx")
