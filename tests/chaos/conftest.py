"""A real API server for the chaos tests: gunicorn, 2 worker processes x 4 threads, on the
suite's database (so a test can count rows behind its back), stopped by process group."""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask

from tests.chaos.figures import scale
from tests.deploy.helpers import free_port_run, stop_group, wait_for

PASSWORD = "correct horse battery"


@dataclass
class Reply:
    """One HTTP answer: status, headers (lower-cased names) and the decoded JSON body."""

    status: int
    headers: dict[str, str]
    body: Any = None
    raw: bytes = b""


@dataclass
class Http:
    """A keep-alive HTTP/1.1 connection of one thread to the server (http.client)."""

    base: str
    token: str | None = None
    _conn: http.client.HTTPConnection | None = field(default=None, repr=False)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        """Send one request (JSON body when given, bytes as they are, with their type in
        `headers`); reconnect once when the server closed."""
        raw_body = isinstance(body, bytes)
        sent = {"Content-Type": "application/json"} if body is not None and not raw_body else {}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        data = body if raw_body else json.dumps(body).encode() if body is not None else None
        path = urlsplit(path).path if path.startswith("http") else path
        for attempt in (1, 2, 3):
            if self._conn is None:
                parts = urlsplit(self.base)
                self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            try:
                self._conn.request(method, path, body=data, headers=sent)
                response = self._conn.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection the server closed while idle (or a worker recycled
                # after its max_requests closed): the request was not read; send it again.
                self.close()
                if attempt == 3:
                    raise
                continue
            kind = response.getheader("Content-Type", "")
            decoded = json.loads(raw) if raw and "json" in kind else None
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                         decoded, raw)  # fmt: skip
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class ApiServer:
    """The running server: its base URL and the folder it runs in."""

    url: str
    folder: Path
    proc: subprocess.Popen[bytes]
    opened: list[Http] = field(default_factory=list, repr=False)

    def http(self, token: str | None = None) -> Http:
        """A new connection (one per thread: http.client is not thread-safe), closed with
        the server."""
        conn = Http(self.url, token)
        self.opened.append(conn)
        return conn

    def stop(self) -> None:
        """Close every connection, then stop the server's process group."""
        for conn in self.opened:
            conn.close()
        stop_group(self.proc)

    def register(self, username: str) -> str:
        """Register `username` and return a bearer token of theirs."""
        conn = self.http()
        try:
            made = conn.request(
                "POST",
                "/api/v1/users",
                {"username": username, "email": f"{username}@example.com", "password": PASSWORD},
            )
            assert made.status == 201, (made.status, made.body)
            creds = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
            issued = conn.request(
                "POST", "/api/v1/tokens", headers={"Authorization": f"Basic {creds}"}
            )
            assert issued.status == 201, (issued.status, issued.body)
            token: str = issued.body["token"]
            return token
        finally:
            conn.close()

    def log_tail(self) -> str:
        return (self.folder / "server.log").read_text(errors="replace")[-4000:]


def start_server(
    database_url: str, folder: Path, extra_env: dict[str, str] | None = None
) -> ApiServer:
    """gunicorn (gthread, 2 processes x 4 threads) serving the app on a free local port."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port_run(1)
    env = {key: value for key, value in os.environ.items() if not key.startswith("TODOSCALE_")}
    env.update(
        TODOSCALE_ENV="testing",
        TODOSCALE_INSTANCE_PATH=str(folder),
        TODOSCALE_DATABASE_URL=database_url,
        TODOSCALE_WORKERS="2",
        TODOSCALE_WORKER_CLASS="gthread",
        TODOSCALE_THREADS="4",
        TODOSCALE_LOG_LEVEL="WARNING",
        TODOSCALE_REQUEST_LOG="0",
        TODOSCALE_BIND=f"127.0.0.1:{port}",
        PYTHONUNBUFFERED="1",
        **(extra_env or {}),
    )
    argv = [sys.executable, "-m", "gunicorn", "--config"]
    argv += [str(Path(__file__).parents[2] / "src/todoscale/deploy/gunicorn.conf.py")]
    argv += ["--graceful-timeout", "5", "todoscale.wsgi:app"]
    with (folder / "server.log").open("ab") as log:
        proc = subprocess.Popen(
            argv, env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = ApiServer(f"http://127.0.0.1:{port}", folder, proc)
    try:
        wait_for(f"{server.url}/healthz", proc, timeout=60)
    except AssertionError as exc:
        stop_group(proc)
        raise AssertionError(f"{exc}\n{server.log_tail()}") from exc
    return server


# Rate limits on, as a fresh `make run` has them, with budgets the races stay within; the
# import budget (10 an hour) is the real one, so the fuzzer meets its 429s.
LIMITS = {
    "TODOSCALE_RATE_LIMITS_ENABLED": "1",
    "TODOSCALE_API_WRITE_LIMIT": "100000 per minute",
    "TODOSCALE_ANON_LIMIT": "1000 per minute",
}


@pytest.fixture(scope="session")
def api_server(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """A real server on the suite's (migrated) database, shared by the chaos tests (its
    start costs seconds); stopped by process group. Tables are emptied after each test as
    usual, so each test registers the users it needs."""
    folder = tmp_path_factory.mktemp("server")
    server = start_server(app.config["SQLALCHEMY_DATABASE_URI"], folder, LIMITS)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def full() -> bool:
    """True under `make chaos` (TODOSCALE_CHAOS=full): the long versions run."""
    return scale() == "full"
