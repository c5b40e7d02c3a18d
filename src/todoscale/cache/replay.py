"""What a response was built from: the local cache entries it read, and until when it holds.

A recording is opened around a request (`ops.ready`, the ready responses); while it is open
the cache tiers note every local entry the request read or filled (`depends`), and say so
when something was computed without being cached (`spoil`). A view whose answer is a
function of the request's key (method, path, query, credentials, host, encodings) and of
those entries declares it (`replayable`); a service whose answer expires with time says
when (`until`). Such a response can be sent again, as it was, while every entry it read is
still the very value in the cache: the entries' stamps then vouch for it as they vouch for
the values themselves.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Recording:
    """The local cache entries one request read, and what else bounds its answer."""

    depends: list[tuple[str, Any]] = field(default_factory=list)
    until: float = math.inf  # a Unix time
    replayable: bool = False
    spoiled: bool = False
    user_id: str | None = None

    @property
    def usable(self) -> bool:
        """True when the answer may be replayed: declared so, and built from cache alone."""
        return self.replayable and not self.spoiled and bool(self.depends)


_current: ContextVar[Recording | None] = ContextVar("todoscale.cache.replay", default=None)


@contextmanager
def recording() -> Iterator[Recording]:
    """Record what the code run inside reads from the local cache."""
    token = _current.set(Recording())
    try:
        yield _current.get()  # type: ignore[misc]
    finally:
        _current.reset(token)


def current() -> Recording | None:
    """The open recording, if any."""
    return _current.get()


def depends(key: str, value: Any) -> None:
    """Note that the answer used the local entry `key`, holding `value` (the object itself)."""
    open_one = _current.get()
    if open_one is not None:
        open_one.depends.append((key, value))


def spoil() -> None:
    """Note that the answer used something computed outside the local cache."""
    open_one = _current.get()
    if open_one is not None:
        open_one.spoiled = True


def until(moment: datetime) -> None:
    """Note that the answer holds only until `moment` (an expiry)."""
    open_one = _current.get()
    if open_one is not None:
        open_one.until = min(open_one.until, moment.timestamp())


def replayable() -> None:
    """Declare that the answer depends only on the request's key and the entries read."""
    open_one = _current.get()
    if open_one is not None:
        open_one.replayable = True
