"""`todoscale cluster up --instances 2`: nginx in front of two gunicorn instances, two Socket.IO
services, a Celery worker and beat, and the cluster's own Redis, for real.

One cluster for the module (starting it is the slow part), with HTTPS on a self-signed
certificate the test makes. Loopback only; every process is stopped by id at the end, even
when a test fails.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import socketio
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.deploy.helpers import free_ports_at, require
from tests.deploy.test_nginx_config import make_certificate
from todoscale.bench import load as wrk
from todoscale.bench import procs
from todoscale.deploy import cluster as local
from todoscale.deploy import probes

PASSWORD = "cluster password 1"


@dataclass
class Cluster:
    """A running cluster: its ports, folder, certificate and a user's bearer token."""

    folder: Path
    port: int
    tls_port: int
    app_ports: list[int]
    certificate: Path
    env: dict[str, str]
    token: str = ""

    def https(self, source: str = "127.0.0.1") -> http.client.HTTPSConnection:
        """A connection to nginx's HTTPS port that trusts only the test's certificate."""
        context = ssl.create_default_context(cafile=str(self.certificate))
        return http.client.HTTPSConnection(
            "127.0.0.1", self.tls_port, context=context, timeout=10, source_address=(source, 0)
        )

    def http(self) -> http.client.HTTPConnection:
        """A connection to nginx's plain HTTP port."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)


def request(
    conn: http.client.HTTPConnection, method: str, path: str, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """One request; status, headers and body."""
    body = headers.pop("body", None)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()  # also when the server hangs up first (an instance coming back)
    return response.status, dict(response.getheaders()), data


def _cluster_database(tmp_path: Path) -> tuple[str, str | None]:
    """SQLite in the instance folder, or a PostgreSQL database of this module's own."""
    url = os.environ.get("TODOSCALE_TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path / 'cluster.db'}", None
    target = make_url(url)
    name = f"{target.database}_cluster"
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return target.set(database=name).render_as_string(hide_password=False), name


def _drop_database(name: str) -> None:
    target = make_url(os.environ["TODOSCALE_TEST_DATABASE_URL"])
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _todoscale(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "todoscale.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"todoscale {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """`todoscale cluster up --instances 2` with HTTPS; `down` and a kill-by-pid sweep after."""
    for tool in ("nginx", "wrk", "openssl", "redis-server"):
        require(tool)
    tmp = tmp_path_factory.mktemp("cluster")
    cert, key = make_certificate(tmp)
    database_url, database = _cluster_database(tmp)
    first = _free_cluster_port(2, tls=True)
    env = {
        "TODOSCALE_INSTANCE_PATH": str(tmp),
        "TODOSCALE_ENV": "development",
        "TODOSCALE_DATABASE_URL": database_url,
        # Whatever the shell running the suite says: this cluster runs its own Redis.
        "TODOSCALE_REDIS_URL": "",
        "TODOSCALE_REQUEST_LOG": "1",
        "TODOSCALE_LOG_LEVEL": "INFO",
    }
    running = Cluster(tmp / "cluster", first, first + 1, [first + 2, first + 3], cert, env)
    try:
        _todoscale(
            env,
            *("cluster", "up", "--instances", "2", "--server", "gunicorn", "--workers", "2"),
            *("--port", str(first), "--tls-port", str(first + 1), "--app-port", str(first + 2)),
            *("--cert", str(cert), "--key", str(key)),
        )
        running.token = _register(running)
        yield running
    finally:
        local.down(running.folder)
        if database:
            _drop_database(database)


def _register(running: Cluster) -> str:
    user = json.dumps({"username": "ann", "email": "ann@example.com", "password": PASSWORD})
    status, _, body = request(
        running.https(),
        "POST",
        "/api/v1/users",
        body=user,
        **{"Content-Type": "application/json"},
    )
    assert status == 201, body
    creds = base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
    status, _, body = request(
        running.https(), "POST", "/api/v1/tokens", Authorization=f"Basic {creds}"
    )
    assert status == 201, body
    for number in range(5):
        payload = json.dumps({"title": f"todo {number}"})
        auth = {"Authorization": f"Bearer {json.loads(body)['token']}"}
        status, _, _ = request(
            running.https(),
            "POST",
            "/api/v1/todos",
            body=payload,
            **auth,
            **{"Content-Type": "application/json"},
        )
        assert status == 201
    token: str = json.loads(body)["token"]
    return token


def test_requests_through_nginx_reach_both_instances(cluster):
    seen = {request(cluster.https(), "GET", "/healthz")[1]["X-Instance-ID"] for _ in range(20)}

    assert seen == {"app1", "app2"}


def test_https_works_with_modern_tls_and_hsts(cluster):
    conn = cluster.https()
    conn.connect()
    version = conn.sock.version()  # type: ignore[union-attr]
    status, headers, _ = request(conn, "GET", "/healthz")

    assert status == 200
    assert version in {"TLSv1.2", "TLSv1.3"}
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    assert len([h for h in headers if h.lower() == "x-frame-options"]) == 1


def test_tls_older_than_1_2_is_refused(cluster):
    """nginx enables TLS 1.2 and 1.3 only; the client here would speak 1.0 and 1.1 (its own
    floor lowered), so a refusal is the server's."""

    def handshake(newest: ssl.TLSVersion) -> str:
        context = ssl.create_default_context(cafile=str(cluster.certificate))
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():  # Python deprecates naming the old versions at all
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = newest
        raw = socket.create_connection(("127.0.0.1", cluster.tls_port), timeout=10)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return str(tls.version())

    assert handshake(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        handshake(ssl.TLSVersion.TLSv1_1)


def test_plain_http_redirects_the_web_ui_and_refuses_the_api(cluster):
    status, headers, _ = request(cluster.http(), "GET", "/login?next=%2F")
    assert status == 301
    assert headers["Location"] == f"https://127.0.0.1:{cluster.tls_port}/login?next=%2F"

    status, headers, body = request(
        cluster.http(), "GET", "/api/v1/todos", Authorization=f"Bearer {cluster.token}"
    )
    assert status == 403
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["title"] == "HTTPS required"

    # Live updates too: no WebSocket (nor long-polling) in clear, only WSS.
    status, headers, _ = request(cluster.http(), "GET", "/socket.io/?EIO=4&transport=websocket")
    assert status == 301
    assert headers["Location"].startswith(f"https://127.0.0.1:{cluster.tls_port}/socket.io/")


def test_nginx_serves_hashed_static_files_for_good_and_its_errors_carry_headers(cluster):
    status, _, page = request(cluster.https(), "GET", "/login")
    assert status == 200
    css = page.decode().split('href="/static/app.', 1)[1].split('"', 1)[0]

    status, headers, _ = request(cluster.https(), "GET", f"/static/app.{css}")
    assert status == 200
    assert headers["Cache-Control"] == "max-age=315360000"
    assert "X-Instance-ID" not in headers, "served by nginx, not by an instance"

    status, headers, _ = request(cluster.https(), "GET", "/static/missing.css")
    assert status == 404
    assert headers["X-Content-Type-Options"] == "nosniff"  # `always`: on nginx's own pages


def _app_log_records(cluster: Cluster) -> list[dict[str, object]]:
    records = []
    for name in ("app1", "app2"):
        for line in (cluster.folder / "logs" / f"{name}.log").read_text().splitlines():
            # Python's warnings (printed by the warnings module, not logged) aside, every
            # line is a JSON object: the app's and gunicorn's own.
            if not line.startswith(("/", "  ")):
                records.append(json.loads(line))
    return records


def test_the_app_logs_the_real_client_address_not_nginxs(cluster):
    request_id = uuid.uuid4().hex
    # The client comes from 127.0.0.3; nginx reaches the instances from 127.0.0.1. A forged
    # X-Forwarded-For must not win: nginx appends the real peer and the app trusts one hop.
    status, headers, _ = request(
        cluster.https(source="127.0.0.3"),
        "GET",
        "/api/v1/todos?limit=1",
        Authorization=f"Bearer {cluster.token}",
        **{"X-Request-ID": request_id, "X-Forwarded-For": "203.0.113.9"},
    )
    assert status == 200
    assert headers["X-Request-ID"] == request_id

    deadline = time.monotonic() + 5
    lines: list[dict[str, object]] = []
    while not lines and time.monotonic() < deadline:
        lines = [r for r in _app_log_records(cluster) if r.get("request_id") == request_id]
        time.sleep(0.1)
    assert len(lines) == 1, "one JSON line per request, none from gunicorn's access log"
    assert lines[0]["remote_addr"] == "127.0.0.3"


def _api(
    cluster: Cluster, method: str, path: str, payload: object = None
) -> tuple[int, dict[str, str], Any]:
    """One API call through nginx's HTTPS port as the fixture's user."""
    headers = {"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"}
    body = json.dumps(payload) if payload is not None else None
    if body is not None:
        headers["body"] = body
    status, response_headers, data = request(cluster.https(), method, path, **headers)
    return status, response_headers, json.loads(data) if data else None


def test_status_lists_every_program_running(cluster):
    lines = _todoscale(cluster.env, "cluster", "status").splitlines()
    states = {line.split()[0]: line.split()[1] for line in lines}

    assert states == {
        name: "RUNNING"
        for name in [
            "redis",
            "nginx",
            "app:app1",
            "app:app2",
            "socketio1",
            "socketio2",
            "worker",
            "beat",
        ]
    }


def test_a_socketio_client_behind_nginx_gets_changes_made_through_the_http_instances(cluster):
    created: list[str] = []
    all_arrived = threading.Event()
    titles = [f"live {n}" for n in range(6)]
    # The certificate is the test's own (checked by the HTTPS tests above); the client library
    # takes no CA file without `requests`, so it skips the check on this loopback connection.
    client = socketio.Client(reconnection=False, ssl_verify=False)

    @client.on("todo.created")
    def _on_created(data: dict[str, Any]) -> None:
        created.append(data["title"])
        if len(created) == len(titles):
            all_arrived.set()

    client.connect(
        f"https://127.0.0.1:{cluster.tls_port}",
        auth={"token": cluster.token},
        transports=["websocket"],
        wait_timeout=10,
    )
    try:
        instances = set()
        for title in titles:
            status, headers, _ = _api(cluster, "POST", "/api/v1/todos", {"title": title})
            assert status == 201
            instances.add(headers["X-Instance-ID"])
        assert all_arrived.wait(10), f"received {created} of {titles}"
    finally:
        client.disconnect()

    assert sorted(created) == titles
    # Made by the HTTP instances, pushed by a Socket.IO service: across processes, via Redis.
    assert instances <= {"app1", "app2"} and instances


def test_an_export_job_completes_through_the_clusters_worker(cluster):
    status, _, job = _api(cluster, "POST", "/api/v1/exports", {"format": "json"})
    assert status == 202, job

    deadline = time.monotonic() + 60
    while job["status"] not in {"succeeded", "failed"} and time.monotonic() < deadline:
        time.sleep(0.2)
        status, _, job = _api(cluster, "GET", f"/api/v1/jobs/{job['id']}")
        assert status == 200
    assert job["status"] == "succeeded", job
    status, _, data = request(
        cluster.https(),
        "GET",
        f"/api/v1/jobs/{job['id']}/result",
        Authorization=f"Bearer {cluster.token}",
    )
    assert status == 200
    assert {"todo 0", "todo 4"} <= {todo["title"] for todo in json.loads(data)["todos"]}


def _program_pid(cluster: Cluster, name: str) -> int:
    return local.program_pids(cluster.folder)[name]


def test_an_instance_killed_mid_load_costs_no_request_nginx_could_retry(cluster):
    errors = cluster.folder / "logs" / "nginx-error.log"
    seen = errors.stat().st_size
    victim = _program_pid(cluster, "app1")
    url = f"https://127.0.0.1:{cluster.tls_port}/api/v1/todos?limit=10"
    killer = threading.Timer(1.5, os.killpg, args=(victim, signal.SIGKILL))
    killer.start()
    try:
        result = wrk.run(
            url, connections=20, seconds=5, headers={"Authorization": f"Bearer {cluster.token}"}
        )
    finally:
        killer.cancel()
        killer.join()

    assert result.requests > 100
    assert result.non_2xx == 0
    # A request dies with the instance only when its response had begun to reach the client
    # (gunicorn writes the head, then the body): nginx cannot retry that one and says so in
    # its log. Every other request that hit the dead instance was retried on the other one.
    with errors.open() as log:
        log.seek(seen)
        lines = log.read().splitlines()
    cut_short = [line for line in lines if "closed connection while reading upstream" in line]
    retried = [
        line
        for line in lines
        if "while reading response header" in line or "while connecting to upstream" in line
    ]
    assert result.socket_errors <= len(cut_short), (result, cut_short)
    assert retried or cut_short, "the kill landed on no request: the test proved nothing"
    # supervisord brings the instance back, as a new process.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = local.program_pids(cluster.folder)
        if pids.get("app1", victim) != victim and _answers(cluster.app_ports[0]):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"app1 did not come back: {local.status(cluster.folder)}")


def _answers(port: int) -> bool:
    try:
        status, _, _ = request(
            http.client.HTTPConnection("127.0.0.1", port, timeout=2), "GET", "/healthz"
        )
    except OSError:
        return False
    return status == 200


def test_cluster_down_stops_every_process(cluster):
    supervisor = local.supervisord_pid(cluster.folder)
    assert supervisor is not None
    pids = [supervisor]
    for pgid in local.program_pids(cluster.folder).values():
        pids += procs.group_members(pgid)
    assert len(pids) >= 1 + 2 * 3  # supervisord, nginx, two gunicorns with two workers each

    output = _todoscale(cluster.env, "cluster", "down", timeout=90)

    assert "Stopped" in output
    assert [pid for pid in pids if procs.alive(pid)] == []
    assert "No cluster is running" in _todoscale(cluster.env, "cluster", "status")


@pytest.mark.database_free  # its cluster is on SQLite of its own: what it tests is Redis
def test_a_given_redis_is_used_and_the_cluster_runs_none_of_its_own(tmp_path, redis_url):
    # As a new user would: a Redis of their own in TODOSCALE_REDIS_URL. The smallest
    # cluster: one instance, one worker each.
    require("nginx")
    first = _free_cluster_port(1, own_redis=False)
    env = {
        "TODOSCALE_INSTANCE_PATH": str(tmp_path),
        "TODOSCALE_ENV": "development",
        "TODOSCALE_DATABASE_URL": f"sqlite:///{tmp_path / 'cluster.db'}",
        "TODOSCALE_REDIS_URL": redis_url,
    }
    # The registration's rate limit is counted per client address: one no one else uses
    # makes the key this cluster's own (the suite's Redis is shared with other tests).
    store = redis.Redis.from_url(redis_url)
    client = next(
        f"127.0.0.{n}" for n in random.sample(range(10, 250), 240) if not _limit_keys(store, n)
    )
    folder = tmp_path / "cluster"
    try:
        _todoscale(env, "cluster", "up", "--instances", "1", "--workers", "1", "--port", str(first))
        user = json.dumps({"username": "rita", "email": "rita@example.com", "password": PASSWORD})
        conn = http.client.HTTPConnection("127.0.0.1", first, source_address=(client, 0))
        status, _, _ = request(
            conn, "POST", "/api/v1/users", body=user, **{"Content-Type": "application/json"}
        )
        assert status == 201
        pids = local.program_pids(folder)
        programs = [pid for pgid in pids.values() for pid in procs.group_members(pgid)]
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in programs]
    finally:
        local.down(folder)

    assert "redis" not in pids
    assert not [command for command in commands if b"redis-server" in command]
    assert _limit_keys(store, int(client.rsplit(".", 1)[1])), "the app's limits are in Redis"
    assert store.exists("_kombu.binding.todoscale"), "the worker's queue is in Redis"


def _limit_keys(store: redis.Redis, host: int) -> list[bytes]:
    return list(store.scan_iter(f"LIMITS:LIMITER/todoscale/127.0.0.{host}/*"))


def _processes_of(folder: Path) -> list[int]:
    """Every live process that names `folder` in its command line or its environment."""
    mark = str(folder).encode()
    found = []
    for pid, fields in procs.processes():
        if pid == os.getpid() or fields[0] == "Z":
            continue
        try:
            seen = (
                Path(f"/proc/{pid}/cmdline").read_bytes()
                + Path(f"/proc/{pid}/environ").read_bytes()
            )
        except OSError:
            continue
        if mark in seen:
            found.append(pid)
    return found


def _free_cluster_port(instances: int, *, tls: bool = False, own_redis: bool = True) -> int:
    """A `--port` from which every port of the cluster is free now, laid out as `Plan` lays
    it out (with `tls`: `--tls-port` next to it and `--app-port` after that). Checking the
    first few only let the other engine's pass, running at the same time, hold a Socket.IO
    or Redis port of the cluster (`port + 100`, `port + 200`)."""
    probe = local.Plan(
        Path(), 0, instances=instances, app_port=2 if tls else 1,
        redis_url=None if own_redis else "redis://127.0.0.1:6379/0",
    )  # fmt: skip
    return free_ports_at([0, *([1] if tls else []), *probe.local_ports])


def _plan(folder: Path) -> local.Plan:
    """Two gunicorn instances on SQLite, the cluster's own Redis, on free ports."""
    for tool in ("nginx", "redis-server"):
        require(tool)
    env = {
        "TODOSCALE_ENV": "development",
        "TODOSCALE_DATABASE_URL": f"sqlite:///{folder / 'cluster.db'}",
    }
    return local.Plan(
        instance_path=folder, port=_free_cluster_port(2), server="gunicorn", workers=2, env=env
    )


def _assert_nothing_left(folder: Path) -> None:
    """No process names `folder` (after a grace of 10 s); whatever is left is killed, by
    session (nginx's workers name no folder), leader first."""
    left = _processes_of(folder)
    deadline = time.monotonic() + 10
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _processes_of(folder)
    if not left:
        return
    described = [Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in left]
    sessions = {int(fields[3]) for pid, fields in procs.processes() if pid in left}
    for pid, fields in sorted(procs.processes(), key=lambda item: item[0] not in sessions):
        if int(fields[3]) in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    pytest.fail(f"{len(left)} processes of the cluster outlived it: {described}")


@pytest.mark.database_free  # its cluster is on SQLite of its own
def test_an_up_that_gives_up_leaves_no_process_behind(tmp_path):
    # `up` gives up at once: supervisord may not have written its pid file yet, and every
    # program is still starting.
    plan = _plan(tmp_path)
    try:
        with pytest.raises(local.ClusterError, match="did not become ready"):
            local.up(plan, timeout=0)
    finally:
        _assert_nothing_left(tmp_path)


@pytest.mark.database_free  # its cluster is on SQLite of its own
def test_down_stops_programs_still_starting_when_supervisord_is_slow_to_stop(tmp_path):
    # On a loaded machine supervisord's own shutdown outlasts `down`'s patience (it stops
    # its programs one after another): what `down` kills then must include the programs
    # that supervisord had not reported running, and whatever they forked since.
    plan = _plan(tmp_path)
    local.start(plan)
    try:
        local.down(plan.folder, timeout=1)
    finally:
        _assert_nothing_left(tmp_path)


@pytest.mark.database_free
def test_free_ports_are_free_at_every_offset_not_only_the_first(monkeypatch):
    # A cluster listens at port, port + 1.., port + 100.. and port + 200: a base whose far
    # ports are held by someone else must be passed over.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        bases = iter([taken - 100, taken + 1000])
        monkeypatch.setattr(probes.random, "randrange", lambda *_: next(bases))

        assert free_ports_at([0, 100]) == taken + 1000
