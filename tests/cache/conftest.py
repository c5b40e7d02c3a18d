"""Redis for the cache tests: the suite's Redis, or one started on its own port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import skip_or_fail, suite_redis_url


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
def cached_apps(app, database_url, tmp_path, request):
    """Build app instances with the cache on and the suite's database: on SQLite sharing
    one instance folder (as the workers of one host do), on a server database with their
    stamps and shared tier in Redis (as hosts do)."""
    from todoscale import create_app
    from todoscale.extensions import db

    settings = {
        "ENV_NAME": "testing",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_PATH": str(tmp_path / "shared"),
    }
    if database_url.startswith("sqlite"):
        settings["LOCAL_CACHE"] = "on"
    else:
        settings["REDIS_URL"] = request.getfixturevalue("redis_url")
    made = []

    def make(count: int):
        apps = [create_app(dict(settings)) for _ in range(count)]
        for each in apps:
            assert "todoscale.local_cache" in each.extensions
        made.extend(apps)
        return apps

    yield make
    for each in made:
        with each.app_context():
            db.engine.dispose()
