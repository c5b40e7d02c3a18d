"""Jobs beside the mixed-traffic load: a small import posted through the API every few
seconds while the faults last, each by another user (the import budget is per user), and
afterwards the count that every import answered 202 took effect exactly once (its rows,
each titled with its number, are in the database once)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import create_engine, text

from tests.chaos.conftest import Http
from todoscale.services import transfer

ROWS = 5  # rows per import: its effect, counted afterwards


def import_file(number: int) -> bytes:
    """A CSV export of ROWS todos whose titles name the job `number`."""
    blank = dict.fromkeys(transfer.FIELDS)
    rows = [{**blank, "list": "L", "title": f"redisjob{number} row{row}"} for row in range(ROWS)]
    return transfer.render(rows, "csv")


def multipart(fields: dict[str, str], name: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with `fields` and one file; the body and its content type."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: text/csv\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass
class Posted:
    """One import sent: its number, status, job id (on 202), when sent and how long it took."""

    number: int
    status: int
    job_id: str | None
    sent: float
    seconds: float


@dataclass(eq=False)
class JobPoster(threading.Thread):
    """Posts an import every `every` seconds from when `begin()` is true until `end()` is."""

    url: str
    tokens: list[str]
    every: float
    begin: Callable[[], bool]
    end: Callable[[], bool]
    posted: list[Posted] = field(default_factory=list)
    error: BaseException | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        super().__init__(daemon=True, name="job poster")

    def run(self) -> None:
        # One thread per import: one that waits on Redis must not hold back the next.
        sending: list[threading.Thread] = []
        try:
            while not self.begin():
                if self.cancel.wait(0.01):
                    return
            number = 0
            while not self.end() and not self.cancel.is_set():
                sending.append(threading.Thread(target=self._send, args=(number,), daemon=True))
                sending[-1].start()
                number += 1
                self.cancel.wait(self.every)
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which raises it
            self.error = exc
        finally:
            for each in sending:
                each.join(timeout=60)

    def _send(self, number: int) -> None:
        try:
            posted = self._post(number)
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which raises it
            self.error = exc
            return
        with self._lock:
            self.posted.append(posted)

    def _post(self, number: int) -> Posted:
        conn = Http(self.url, self.tokens[number % len(self.tokens)])
        try:
            lists = conn.request("GET", "/api/v1/lists")
            assert lists.status == 200, (lists.status, lists.body)
            list_id = lists.body["items"][0]["id"]
            body, kind = multipart({"list_id": list_id}, f"job{number}.csv", import_file(number))
            began = time.monotonic()
            answer = conn.request("POST", "/api/v1/imports", body, {"Content-Type": kind})
            seconds = time.monotonic() - began
        finally:
            conn.close()
        job_id = answer.body["id"] if answer.status == 202 else None
        return Posted(number, answer.status, job_id, began, seconds)


def effects(database_url: str, numbers: list[int]) -> dict[int, int]:
    """How many rows each import left (ROWS once, 0 never, more when it ran twice)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            titles = conn.execute(text("SELECT title FROM todos WHERE title LIKE 'redisjob%'"))
            found = [row[0] for row in titles]
    finally:
        engine.dispose()
    counts = dict.fromkeys(numbers, 0)
    for title in found:
        number = int(title.split()[0].removeprefix("redisjob"))
        counts[number] = counts.get(number, 0) + 1
    return counts


def finished(database_url: str, job_ids: list[str]) -> dict[str, tuple[str, Any]]:
    """Each job's status and when it finished, as the database holds them now."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, status, finished_at FROM jobs"))
            wanted = set(job_ids)
            return {row[0]: (row[1], row[2]) for row in rows if row[0] in wanted}
    finally:
        engine.dispose()
