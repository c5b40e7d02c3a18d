"""Column types and helpers shared by the models: time-ordered ids and UTC timestamps."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class _RandomBytes:
    """The OS's random bytes, fetched a page at a time and handed out in slices.

    `os.urandom` per id released the GIL for its system call, and under load a request
    thread then waited for another's switch interval to get it back (py-spy: a tenth of a
    create's time). One call per 400 ids costs nothing; a forked child starts empty, so no
    two processes hand out the same bytes.
    """

    PAGE = 4096

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pool = b""
        self.offset = 0
        os.register_at_fork(after_in_child=self.forget)

    def forget(self) -> None:
        self.lock = threading.Lock()
        self.pool, self.offset = b"", 0

    def take(self, count: int) -> bytes:
        with self.lock:
            if self.offset + count > len(self.pool):
                self.pool, self.offset = os.urandom(self.PAGE), 0
            start = self.offset
            self.offset += count
            return self.pool[start : self.offset]


_random = _RandomBytes()


def new_id() -> str:
    """Return a new UUIDv7 (RFC 9562) as 32 hex digits: unique, opaque and time-ordered."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(_random.take(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return f"{value:032x}"


def utcnow() -> datetime:
    """Return the current time, UTC, aware, with microseconds."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back as an aware UTC datetime.

    SQLite keeps no zone, so values are normalised to UTC on the way in and tagged on the
    way out; PostgreSQL stores `timestamptz`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """On SQLite, parse the stored text with the C-level `fromisoformat`.

        SQLAlchemy's own SQLite DATETIME parser runs a regular expression per value: on a
        page of ten todos (four timestamps each) that was most of the cost of the read.
        The stored format is SQLAlchemy's, so rows written either way read back the same.
        """
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value + "+00:00")

        return process
