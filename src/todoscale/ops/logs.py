"""Logging, configured once with dictConfig: one JSON object per line, with the request id.

Records leave the thread that made them through a queue (`QueuedHandler`); one writer
thread per process formats them and writes them to stderr. A request thread then never
waits for the handler's lock or for a write: measured under granian with 4 threads per
worker, the synchronous handler put a third of the threads' time in `Handler.acquire`.
The writer drains the queue before the process exits, however it exits normally (the end
of the main thread, SIGTERM to a granian or gunicorn worker, a forked Celery child), so no
line is lost; a record made after the writer has stopped is written on the spot.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import logging.config
import logging.handlers
import os
import threading
import time
import weakref
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask, g, has_request_context, request

# The logger of `services.audit.security_event`: each event made in a request names its client.
SECURITY_LOGGER = "todoscale.security"


class RequestIdFilter(logging.Filter):
    """Stamp every record made inside a request with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id") if has_request_context() else None
        return True


def _client_address(record: logging.LogRecord) -> bool:
    """Stamp a security event made inside a request with the client's address, unless the
    event names one itself (the services that log them know nothing of requests)."""
    if not hasattr(record, "address") and has_request_context():
        record.address = request.remote_addr
    return True


def init_app(app: Flask) -> None:
    """Security events name their client (on the logger itself: every handler sees it, a
    test's too); outside the test suite, logs go to stderr as JSON lines."""
    logging.getLogger(SECURITY_LOGGER).addFilter(_client_address)  # once: the same filter
    if not app.testing:
        configure(app.config["LOG_LEVEL"])


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message, request id, extras."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in self._STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class LinesHandler(logging.StreamHandler):
    """A StreamHandler that also writes many records at once, in whole-line chunks.

    Each chunk is one write of at most PIPE_BUF bytes, which a pipe never interleaves with
    another process's writes: the workers of one server share its stderr.
    """

    CHUNK_BYTES = 4096  # PIPE_BUF on Linux (the POSIX minimum is 512)

    def emit_many(self, records: list[logging.LogRecord]) -> None:
        """Format the records and write them, one line each."""
        chunk: list[str] = []
        size = 0
        for record in records:
            try:
                line = self.format(record) + self.terminator
            except Exception:  # noqa: BLE001 (logging's own rule: report, never raise)
                self.handleError(record)
                continue
            if chunk and size + len(line) > self.CHUNK_BYTES:
                self._write("".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            self._write("".join(chunk))

    def _write(self, text: str) -> None:
        with self.lock:  # type: ignore[union-attr]
            self.stream.write(text)
            self.flush()


class _Writer:
    """The writer thread of one process: every so often writes what was queued, in one go.

    Records wait up to BATCH_SECONDS: a thread woken for every record cost more CPU than
    the synchronous write it replaced (measured); a batch costs one wake-up and a few writes.
    """

    BATCH_SECONDS = 0.05
    IDLE_POLL_SECONDS = 0.5

    def __init__(self, target: LinesHandler) -> None:
        self.target = target
        self.records: collections.deque[logging.LogRecord] = collections.deque()
        self.pending = threading.Event()
        self.stopping = False
        self.closed = False
        # Not a daemon: a daemon is cut off at exit with records still queued. The
        # interpreter (and a multiprocessing child, as granian's workers are) joins it
        # after the main thread ends, and it stops once it has written what is left.
        # Said explicitly: a thread inherits its starter's flag, and granian's request
        # threads, made outside Python, are daemons.
        self.thread = threading.Thread(target=self._run, name="todoscale-log-writer", daemon=False)
        self.thread.start()

    def _run(self) -> None:
        main = threading.main_thread()
        while not self.stopping:
            if not self.pending.wait(self.IDLE_POLL_SECONDS):
                if main.is_alive():
                    continue
                break
            time.sleep(self.BATCH_SECONDS)  # let the batch gather
            self.pending.clear()
            self.drain()
        # Closed first, drained after: a record put before the flag is seen is drained
        # here, and whoever puts one after it was set drains it itself (`put`).
        self.closed = True
        self.drain()

    def drain(self) -> None:
        """Write every record queued now, on the calling thread."""
        batch = []
        with contextlib.suppress(IndexError):
            while True:
                batch.append(self.records.popleft())
        if batch:
            self.target.emit_many(batch)

    def put(self, record: logging.LogRecord) -> None:
        """Queue a record; write it here once the writer has stopped (the process is exiting)."""
        self.records.append(record)
        if self.closed:
            self.drain()
        elif not self.pending.is_set():
            self.pending.set()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        self.stopping = True
        self.pending.set()
        if self.thread is not threading.current_thread():
            self.thread.join()


class QueuedHandler(logging.handlers.QueueHandler):
    """A QueueHandler whose records reach `target` on the process's writer thread.

    `prepare` does not format on the caller's thread (the standard one formats and copies
    every record): it only merges the message with its arguments, which may change once
    the caller moves on. The queue is the writer's, one per process: a forked child starts
    its own at its first record.
    """

    def __init__(self, target: LinesHandler) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # the writer holds the queue
        self.target = target
        self._writer: _Writer | None = None
        self._start_lock = threading.Lock()
        alive = weakref.ref(self)  # the fork hook cannot be removed: it must not keep us
        os.register_at_fork(after_in_child=lambda: _forget_writer(alive()))

    def _forget_writer(self) -> None:
        # The parent's writer thread does not exist in a forked child, and what its queue
        # held is the parent's to write.
        self._writer = None
        self._start_lock = threading.Lock()

    def _this_process_writer(self) -> _Writer:
        writer = self._writer
        if writer is None:
            with self._start_lock:
                if self._writer is None:
                    self._writer = _Writer(self.target)
                writer = self._writer
        return writer

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """The record as it is, its message merged with its arguments."""
        if record.args:
            record.msg, record.args = record.getMessage(), None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        """Hand the record to this process's writer."""
        self._this_process_writer().put(record)

    def close(self) -> None:
        """Write what is queued and stop the writer (logging reconfigured, or shut down)."""
        if self._writer is not None:
            self._writer.stop()
        super().close()


def _forget_writer(handler: QueuedHandler | None) -> None:
    if handler is not None:
        handler._forget_writer()


def stderr_handler() -> QueuedHandler:
    """The JSON lines handler on stderr, behind the queue (dictConfig's factory)."""
    target = LinesHandler()  # sys.stderr
    target.setFormatter(JsonFormatter())
    return QueuedHandler(target)


def configure(level: str) -> None:
    """Send the app's and the servers' logs to stderr as JSON lines."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"request_id": {"()": RequestIdFilter}},
            "handlers": {
                "stderr": {"()": stderr_handler, "filters": ["request_id"]},
            },
            "loggers": {
                "todoscale": {"level": level, "handlers": ["stderr"], "propagate": False},
                "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
                "gunicorn.access": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            },
            "root": {"level": "WARNING", "handlers": ["stderr"]},
        }
    )
