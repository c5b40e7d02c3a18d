"""What an answer was built from: the scopes and stamps of the cached values it used, and
until when it holds.

`tiers.memoize` notes, in the open recording, the stamps every value it returns was
checked or computed against (`note`), and says so when something was computed without
being cached (`spoil`). The stamps a recording holds are the ones the rest of it is read
against: a value computed from another one (a page from the ids of the lists it covers)
is stamped with what the value it started from was stamped with, so a change between the
two can only cost a miss, never a stale hit.

A recording is opened around a request (`ops.ready`, the ready responses). A view whose
answer is a function of the request's key (method, path, query, credentials, host,
encodings) and of cached values declares it (`replayable`); a service whose answer
expires with time says when (`until`). Such a response can be sent again, as it was,
while every scope it noted still has the stamp noted: the same check as for the values.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from todoscale.cache.stamps import Stamps


@dataclass
class Recording:
    """The stamps one answer was read against, and what else bounds it."""

    stamps: dict[str, bytes] = field(default_factory=dict)
    until: float = math.inf  # a Unix time
    replayable: bool = False
    spoiled: bool = False
    user_id: str | None = None

    @property
    def usable(self) -> bool:
        """True when the answer may be replayed: declared so, and built from cache alone."""
        return self.replayable and not self.spoiled and bool(self.stamps)

    def adopt(self, stamps: Stamps) -> Stamps:
        """`stamps`, with the stamp already noted for any scope seen before; note the others."""
        noted = self.stamps
        return tuple((scope, noted.setdefault(scope, stamp)) for scope, stamp in stamps)


_current: ContextVar[Recording | None] = ContextVar("todoscale.cache.replay", default=None)


@contextmanager
def recording() -> Iterator[Recording]:
    """Record, afresh, what the code run inside reads from the cache."""
    token = _current.set(Recording())
    try:
        yield _current.get()  # type: ignore[misc]
    finally:
        _current.reset(token)


@contextmanager
def reading() -> Iterator[Recording]:
    """The open recording, or one for the code run inside: values read in it are stamped alike."""
    open_one = _current.get()
    if open_one is not None:
        yield open_one
        return
    with recording() as fresh:
        yield fresh


def current() -> Recording | None:
    """The open recording, if any."""
    return _current.get()


def note(stamps: Stamps, expires: float) -> None:
    """Note that the answer used a value checked against `stamps`, cached until `expires`
    (a `time.monotonic()`)."""
    open_one = _current.get()
    if open_one is not None:
        open_one.adopt(stamps)
        open_one.until = min(open_one.until, time.time() + expires - time.monotonic())


def spoil() -> None:
    """Note that the answer used something computed outside the cache."""
    open_one = _current.get()
    if open_one is not None:
        open_one.spoiled = True


def until(moment: datetime) -> None:
    """Note that the answer holds only until `moment` (an expiry)."""
    open_one = _current.get()
    if open_one is not None:
        open_one.until = min(open_one.until, moment.timestamp())


def replayable() -> None:
    """Declare that the answer depends only on the request's key and the cached values read."""
    open_one = _current.get()
    if open_one is not None:
        open_one.replayable = True
