"""Shared fixtures: one app per run on SQLite (default) or on the PostgreSQL named by
TODOSCALE_TEST_DATABASE_URL, every table emptied after each test."""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from pydantic import BaseModel
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tests.workers import Worker, purge_queue
from todoscale import create_app, realtime
from todoscale.extensions import db
from todoscale.models import crypto

REQUIRE_SERVICES = os.environ.get("TODOSCALE_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip with `reason`, or fail when CI demands every service (TODOSCALE_REQUIRE_SERVICES=1)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (TODOSCALE_REQUIRE_SERVICES=1 turns this skip into a failure)")
    pytest.skip(reason)


def _prepare_postgres(url: str) -> str | None:
    """Create the test database afresh; return why not when the server is unreachable."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    except OperationalError as exc:
        return f"PostgreSQL at {target.render_as_string(hide_password=True)} is unreachable: {exc}"
    finally:
        admin.dispose()
    return None


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database of this run: TODOSCALE_TEST_DATABASE_URL, else a fresh SQLite file."""
    url = os.environ.get("TODOSCALE_TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    problem = _prepare_postgres(url)
    if problem:
        skip_or_fail(problem)
    return url


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def suite_redis_url() -> str | None:
    """TODOSCALE_TEST_REDIS_URL, else database 15 of a local Redis; None when none answers
    (a failure instead when TODOSCALE_REQUIRE_SERVICES=1 asked for it)."""
    url = os.environ.get("TODOSCALE_TEST_REDIS_URL") or DEFAULT_REDIS_URL
    try:
        redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis at {url} does not answer (TODOSCALE_REQUIRE_SERVICES=1)")
        return None
    return url


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The app under test, its schema built by the real migrations. On a server database
    it runs as scaled out: cache stamps and the shared cache tier in Redis."""
    settings = {
        "ENV_NAME": "testing",
        "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
        "SQLALCHEMY_DATABASE_URI": database_url,
    }
    if not database_url.startswith("sqlite"):
        settings["REDIS_URL"] = suite_redis_url()
    app = create_app(settings)
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.session.remove()  # its connection back to the pool, which dispose closes
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty every table after each test that used the app: tests never see each other's rows."""
    yield
    if "app" not in request.fixturenames:
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps of their own (testing config, own instance folder and SQLite file) with
    overrides; their schema is not built (call `upgrade()` in their app context)."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        folder = tmp_path / f"app{len(apps)}"
        app = create_app(
            {
                "ENV_NAME": "testing",
                "INSTANCE_PATH": str(folder),
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'ops.db'}",
                **overrides,
            }
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.session.remove()  # its connection back to the pool, which dispose closes
            db.engine.dispose()


@contextlib.contextmanager
def serving(app: Flask, folder: Path, **overrides: Any) -> Iterator[Flask]:
    """An app on `app`'s database that serves Socket.IO in-process (threading mode), as
    `make run`'s Socket.IO service does; its background task stopped and its engine
    disposed after."""
    serving = create_app(
        {
            "ENV_NAME": "testing",
            "INSTANCE_PATH": str(folder),
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REALTIME": "serve",
            **overrides,
        }
    )
    yield serving
    assert realtime.stop(serving), "the serving app's recheck task did not end"
    with serving.app_context():
        db.session.remove()  # its connection back to the pool, which dispose closes
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner."""
    return app.test_cli_runner()


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    """An app context, for service tests that call services directly."""
    with app.app_context():
        yield
        db.session.remove()


_numbers = itertools.count(1)


class Account:
    """A registered user seen from the API: its JSON, password and a live token."""

    def __init__(self, client: FlaskClient, username: str | None = None) -> None:
        self.client = client
        self.username = username or f"user{next(_numbers)}"
        self.password = "correct horse battery"
        response = client.post(
            "/api/v1/users",
            json={
                "username": self.username,
                "email": f"{self.username}@example.com",
                "password": self.password,
            },
        )
        assert response.status_code == 201, response.get_json()
        self.user: dict[str, Any] = response.get_json()
        self.token = self.new_token()
        self.inbox_id: str = self.get("/api/v1/lists").get_json()["items"][0]["id"]

    def new_token(self) -> str:
        """Log in with HTTP Basic and return a new token."""
        creds = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        response = self.client.post("/api/v1/tokens", headers={"Authorization": f"Basic {creds}"})
        assert response.status_code == 201, response.get_json()
        token: str = response.get_json()["token"]
        return token

    @property
    def headers(self) -> dict[str, str]:
        """The bearer header."""
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.client.post(
            url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs
        )

    def patch(self, url: str, **kwargs: Any) -> Any:
        return self.client.patch(
            url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs
        )

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.client.delete(
            url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs
        )

    def add_todo(self, title: str = "Buy milk", **fields: Any) -> dict[str, Any]:
        """Create a todo through the API and return its JSON."""
        response = self.post("/api/v1/todos", json={"title": title, **fields})
        assert response.status_code == 201, response.get_json()
        todo: dict[str, Any] = response.get_json()
        return todo


@pytest.fixture
def alice(client: FlaskClient) -> Account:
    """A registered user with a token."""
    return Account(client, "alice")


@pytest.fixture
def bob(client: FlaskClient) -> Account:
    """A second registered user with a token."""
    return Account(client, "bob")


@pytest.fixture
def make_account(client: FlaskClient) -> Any:
    """Register more users on demand."""
    return lambda username=None: Account(client, username)


PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def argon2_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 computation ("hash" or "verify") this process makes during the test.

    The library's own functions are wrapped (a probe at the edge): counting work, unlike
    timing it, cannot be fooled by a busy machine.
    """
    from argon2 import _password_hasher as hasher

    runs: list[str] = []

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            runs.append(name)  # list.append is atomic: safe from server threads
            return real(*args, **kwargs)

        return run

    monkeypatch.setattr(hasher, "hash_secret", counting("hash", hasher.hash_secret))
    monkeypatch.setattr(hasher, "verify_secret", counting("verify", hasher.verify_secret))
    return runs


def assert_shape(model: type[BaseModel], data: dict[str, Any]) -> None:
    """Check `data` has exactly `model`'s fields, each valid, every `..._at` in UTC with a Z."""
    model.model_validate(data)
    assert set(data) == set(model.model_fields), data
    for key, value in data.items():
        if key.endswith("_at") and value is not None:
            assert value.endswith("Z"), (key, value)


class Recorder:
    """A signal receiver that remembers each call: its sender and keyword arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, dict[str, object]]] = []

    def __call__(self, sender: object, **kwargs: object) -> None:
        self.calls.append((sender, kwargs))


@pytest.fixture
def row_counts(app: Flask) -> Callable[[], dict[str, int]]:
    """A function returning how many rows each table holds right now."""

    def counts() -> dict[str, int]:
        with app.app_context():
            return {
                table.name: db.session.scalar(select(func.count()).select_from(table)) or 0
                for table in db.metadata.sorted_tables
            }

    return counts


@pytest.fixture
def redis_url() -> str:
    """The suite's Redis (see tests.conftest.suite_redis_url), or a skip saying why."""
    url = suite_redis_url()
    if url is None:
        skip_or_fail("no Redis answers; set TODOSCALE_TEST_REDIS_URL")
    assert url is not None
    return url


class RedisServer:
    """A redis-server of the test's own, on a free port; stopped by process id."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            skip_or_fail("redis-server is not installed (apt-get install redis-server)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._argv = [
            str(binary),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self._argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_timeout=0.5).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def pause(self) -> None:
        """Freeze the server: connections time out, its data stays (a hung server)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again, with all it held."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a paused process must wake to die
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server, started; always stopped at the end."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_worker(app: Flask) -> Iterator[Callable[..., Worker]]:
    """Start real Celery workers for `app` on demand (tests.workers.Worker's arguments);
    the queue is purged before the first, every worker is stopped at the end."""
    started: list[Worker] = []
    purge_queue(app)

    def start(timeout: float = 30.0, **options: Any) -> Worker:
        worker = Worker(app, **options)
        started.append(worker)
        return worker.start(timeout=timeout)

    try:
        yield start
    finally:
        for worker in started:
            worker.kill()  # the test is over: no need to wait for a warm shutdown
            worker.close()
        purge_queue(app)


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        skip_or_fail("the openssl command is missing (apt-get install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [
            *(str(openssl), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
def encrypted_notes(app: Flask) -> Iterator[None]:
    """`app` with notes encrypted at rest, as TODOSCALE_ENCRYPTION_KEYS turns it on."""
    setting, keys = app.config["ENCRYPTION_KEYS"], app.extensions.get(crypto.EXTENSION)
    app.config["ENCRYPTION_KEYS"] = (crypto.generate_key(),)
    crypto.init_app(app)
    try:
        yield
    finally:
        app.config["ENCRYPTION_KEYS"], app.extensions[crypto.EXTENSION] = setting, keys


@pytest.fixture
def records_of(caplog: pytest.LogCaptureFixture) -> Callable[..., Any]:
    """`with records_of("todoscale.security") as records:` collects that logger's records,
    even after the app's dictConfig set it not to propagate (a CLI test builds such an app)."""
    import contextlib
    import logging

    @contextlib.contextmanager
    def collect(name: str, level: int = logging.INFO) -> Iterator[list[logging.LogRecord]]:
        logger = logging.getLogger(name)
        records: list[logging.LogRecord] = []
        handler = logging.Handler(level)
        handler.emit = records.append  # type: ignore[method-assign]
        previous = logger.level
        logger.addHandler(handler)
        logger.setLevel(min(level, previous or level))
        try:
            yield records
        finally:
            logger.removeHandler(handler)
            logger.setLevel(previous)

    return collect


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures the fault and race tests reported (tests.chaos.figures), one line each."""
    from tests.chaos.figures import LINES

    if LINES:
        terminalreporter.section("chaos figures")
        for line in LINES:
            terminalreporter.write_line(line)
