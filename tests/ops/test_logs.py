"""The queued JSON log: off the caller's thread, every record written once, none lost at exit."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.deploy.helpers import free_port_run, stop_group, wait_for
from todoscale.ops.logs import JsonFormatter, LinesHandler, QueuedHandler
from todoscale.services.audit import security_event

REQUEST_FIELDS = {"method", "path", "status", "duration_ms", "request_id", "user_id"}


class Recorder(LinesHandler):
    """Writes into memory and notes which thread wrote each batch."""

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.setFormatter(JsonFormatter())
        self.threads: list[str] = []

    def emit_many(self, records: list[logging.LogRecord]) -> None:
        self.threads.append(threading.current_thread().name)
        super().emit_many(records)

    def messages(self) -> list[str]:
        assert isinstance(self.stream, io.StringIO)
        return [json.loads(line)["message"] for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def queued() -> tuple[logging.Logger, QueuedHandler, Recorder]:
    recorder = Recorder()
    handler = QueuedHandler(recorder)
    logger = logging.Logger("todoscale.test.queued", logging.INFO)
    logger.addHandler(handler)
    return logger, handler, recorder


def test_records_are_written_once_in_order_by_the_writer_thread(queued):
    logger, handler, recorder = queued

    for n in range(500):
        logger.info("line %d", n)
    handler.close()

    assert recorder.messages() == [f"line {n}" for n in range(500)]
    assert set(recorder.threads) == {"todoscale-log-writer"}


def test_a_record_made_after_the_writer_stopped_is_written_at_once(queued):
    logger, handler, recorder = queued
    logger.info("before")
    handler.close()

    logger.info("after")

    assert recorder.messages() == ["before", "after"]


def test_the_message_is_merged_when_logged_not_when_written(queued):
    logger, handler, recorder = queued
    changing = ["first"]

    logger.info("value %s", changing)
    changing[0] = "second"
    handler.close()

    assert recorder.messages() == ["value ['first']"]


def test_chunks_are_whole_lines_within_a_pipe_write(queued):
    logger, handler, recorder = queued
    writes: list[str] = []
    recorder._write = writes.append  # type: ignore[method-assign]

    for n in range(300):
        logger.info("x" * 100 + str(n))
    handler.close()

    assert all(len(chunk.encode()) <= LinesHandler.CHUNK_BYTES for chunk in writes)
    assert all(chunk.endswith("\n") for chunk in writes)
    assert sum(chunk.count("\n") for chunk in writes) == 300


def test_a_forked_child_writes_its_own_records(tmp_path):
    # In a fresh interpreter: forking this test process (with its threads) is not safe.
    script = f"""
import logging, os, sys
from todoscale.ops.logs import JsonFormatter, LinesHandler, QueuedHandler
target = LinesHandler(open({str(tmp_path / "log")!r}, "a", buffering=1))
target.setFormatter(JsonFormatter())
logger = logging.getLogger("t")
logger.addHandler(QueuedHandler(target))
logger.setLevel(logging.INFO)
logger.info("parent before")
pid = os.fork()
if pid == 0:
    for n in range(200):
        logger.info("child %d", n)
    sys.exit(0)
os.waitpid(pid, 0)
logger.info("parent after")
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)

    lines = [json.loads(line)["message"] for line in (tmp_path / "log").read_text().splitlines()]
    assert sorted(lines) == sorted(
        ["parent before", "parent after"] + [f"child {n}" for n in range(200)]
    )


def _start(server_argv: list[str], tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TODOSCALE_")},
        "TODOSCALE_INSTANCE_PATH": str(tmp_path),
        "TODOSCALE_ENV": "development",
        "TODOSCALE_WORKERS": "2",
        "PORT": str(port),
    }
    argv = [sys.executable, "-m", "todoscale.cli", "serve", *server_argv]
    with (tmp_path / "server.log").open("wb") as log:
        return subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
        )


def _get(url: str, request_id: str) -> int:
    request = urllib.request.Request(url, headers={"X-Request-ID": request_id})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        return int(response.status)


@pytest.mark.database_free  # servers on SQLite in their instance folder
@pytest.mark.parametrize(
    "server_argv", [["--server", "granian"], ["--socketio"]], ids=["granian", "gunicorn-gevent"]
)
def test_every_request_is_logged_once_with_its_fields_even_at_sigterm(tmp_path, server_argv):
    port = free_port_run(1)
    proc = _start(server_argv, tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    ids = [f"sigterm-{n}" for n in range(400)]
    try:
        wait_for(f"{base}/healthz", proc, timeout=60)
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda rid: _get(f"{base}/healthz", rid), ids))
        assert statuses == [200] * len(ids)
    finally:
        stop_group(proc, signal.SIGTERM)  # right after the last answer: lines still queued

    records = []
    for line in (tmp_path / "server.log").read_text().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    logged = [r for r in records if r.get("message") == "request"]
    ours = [r for r in logged if r["request_id"].startswith("sigterm-")]
    assert sorted(r["request_id"] for r in ours) == sorted(ids)  # each once, none lost
    for record in ours:
        assert set(record) >= REQUEST_FIELDS, record
        assert (record["method"], record["path"]) == ("GET", "/healthz")
        assert (record["status"], record["user_id"]) == (200, None)


def test_a_security_event_in_a_request_names_the_client_unless_it_names_one(app, records_of):
    request = app.test_request_context(environ_base={"REMOTE_ADDR": "203.0.113.9"})
    with records_of("todoscale.security") as records, request:
        security_event("login.failed", username="carol")
        security_event("admin.memory_snapshot", user="root", address="198.51.100.7")

    assert [(record.event, record.address) for record in records] == [
        ("login.failed", "203.0.113.9"),
        ("admin.memory_snapshot", "198.51.100.7"),
    ]
    line = json.loads(JsonFormatter().format(records[0]))
    # The address comes last of the event's fields (a handler's filter, set up by an earlier
    # test's logging configuration, may add the request id after them).
    fields = [key for key in line if key != "request_id"]
    assert fields[-3:] == ["security", "username", "address"]


def test_a_failed_token_request_logs_the_clients_address(client, alice, records_of):
    with records_of("todoscale.security") as records:
        response = client.post("/api/v1/tokens", auth=(alice.username, "not the password"))

    assert response.status_code == 401
    [failed] = [record for record in records if record.event == "login.failed"]
    assert (failed.username, failed.address) == (alice.username, "127.0.0.1")
