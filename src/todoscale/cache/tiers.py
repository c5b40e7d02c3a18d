"""The tiers behind the local cache: the shared tier (Redis, for server databases) and
single flight, so a value that changed is computed once, not once per waiting request (no
stampede).

The shared tier's key carries the stamps the value was computed under: a bump makes a new
key, so nothing is ever deleted or overwritten, and old keys simply expire. Its values are
JSON, written and read by the caller's `Codec`: never pickled (unpickling what Redis holds
would run whatever code anyone who can write to it put there).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import orjson
import redis
from flask import current_app

from todoscale.cache import replay
from todoscale.cache.local import REDIS_EXTENSION, LocalCache, local_cache
from todoscale.cache.stamps import Stamps
from todoscale.instruments import CACHE_REQUESTS

logger = logging.getLogger(__name__)

# Counted where the cache decides: a local look-up (hit or miss) and a shared one.
LOCAL_HIT, LOCAL_MISS = (
    CACHE_REQUESTS.labels("local", "hit"),
    CACHE_REQUESTS.labels("local", "miss"),
)
SHARED_HIT = CACHE_REQUESTS.labels("shared", "hit")
SHARED_MISS = CACHE_REQUESTS.labels("shared", "miss")

T = TypeVar("T")

# What the tiers store for "there is nothing there" (a lookup of an id that does not
# exist): cached like any value, so repeated misses do not reach the database (no
# penetration), and invalidated by the same stamps.
ABSENT = ("todoscale.cache", "absent")
LOCK_MS = 5_000
WAIT_SECONDS = 2.0
POLL_SECONDS = 0.005

_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0"""


def _version(key: str, stamps: Stamps) -> str:
    digest = hashlib.blake2b(b"".join(stamp for _, stamp in stamps), digest_size=12)
    return f"todoscale:v:{key}@{digest.hexdigest()}"


def _redis() -> redis.Redis | None:
    client: redis.Redis | None = current_app.extensions.get(REDIS_EXTENSION)
    return client


WARN_EVERY = 30.0
_warned_at = [-WARN_EVERY]


def _unavailable(exc: Exception) -> None:
    """Log a shared-tier failure at most once per WARN_EVERY seconds, not per request."""
    now = time.monotonic()
    if now - _warned_at[0] >= WARN_EVERY:
        _warned_at[0] = now
        logger.warning("shared cache unavailable, computing instead: %s", exc)


@dataclass(frozen=True)
class Codec(Generic[T]):
    """How a cached value becomes plain JSON data for the shared tier, and back, exactly
    (datetimes included: orjson writes them in RFC 3339 with microseconds and offset)."""

    dump: Callable[[T], Any]
    load: Callable[[Any], T]


# For values that are JSON already (lists of ids).
AS_IS: Codec[Any] = Codec(dump=lambda value: value, load=lambda data: data)


def _shared_get(key: str, codec: Codec[Any]) -> Any | None:
    """The value the shared tier holds for `key` (ABSENT for a cached "nothing"), or None."""
    client = _redis()
    assert client is not None
    try:
        raw = cast(bytes | None, client.get(key))
    except redis.RedisError as exc:
        _unavailable(exc)
        return None
    if raw is None:
        return None
    data = orjson.loads(raw)
    return ABSENT if data is None else codec.load(data)


def _shared_set(key: str, value: Any, codec: Codec[Any]) -> None:
    client = _redis()
    assert client is not None
    raw = orjson.dumps(None if value == ABSENT else codec.dump(value))
    try:
        client.set(key, raw, ex=max(1, int(current_app.config["LOCAL_CACHE_TTL"])))
    except redis.RedisError as exc:
        _unavailable(exc)


def _compute_once(key: str, compute: Callable[[], Any], codec: Codec[Any]) -> Any:
    """Compute under a Redis lock; whoever loses the race waits for the winner's value."""
    client = _redis()
    assert client is not None
    owner = os.urandom(8).hex()
    lock = f"{key}:lock"
    try:
        won = client.set(lock, owner, nx=True, px=LOCK_MS)
    except redis.RedisError:
        return compute()  # fail open
    if won:
        try:
            value = compute()
            _shared_set(key, value, codec)
            return value
        finally:
            with contextlib.suppress(redis.RedisError):  # else the lock expires by itself
                client.eval(_RELEASE, 1, lock, owner)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        value = _shared_get(key, codec)
        if value is not None:
            return value
    return compute()  # the winner is slow or died: don't wait longer


Scopes = Sequence[str] | Callable[[], Sequence[str]]


def memoize(
    key: str, scopes: Scopes, compute: Callable[[], T | None], codec: Codec[T] = AS_IS
) -> T | None:
    """The value of `key`, valid while none of `scopes` is bumped: from this process, from
    the shared tier (as `codec` writes it), or computed once for everyone. None results are
    cached too.

    `scopes` may be a function, called on every miss, before `compute`: the scopes of a
    value that are themselves read from the cache (a page's lists). Cached values read
    there stamp this one with the stamps they were read against (`replay.reading`), so
    what changed in between can only cost a miss.
    """
    cache = local_cache()
    if cache is None:
        replay.spoil()
        if callable(scopes):
            scopes()  # a miss like any other: `compute` may use what it read
        return compute()
    entry = cache.entry(key)
    if entry is not None:
        LOCAL_HIT.inc()
        stamps, expires, value = entry
    else:
        LOCAL_MISS.inc()
        with replay.reading() as seen:
            read = cache.stamps(*(scopes() if callable(scopes) else scopes))
            if read is None:
                replay.spoil()
                return compute()
            stamps = seen.adopt(read)
            value, expires = _fill(cache, key, stamps, compute, codec)
    replay.note(stamps, expires)
    return None if value == ABSENT else value


def _fill(
    cache: LocalCache, key: str, stamps: Stamps, compute: Callable[[], Any], codec: Codec[Any]
) -> tuple[Any, float]:
    """Compute `key` under `stamps` (or take it from the shared tier), cache it here;
    return it (ABSENT for None) and when it expires here."""
    version = _version(key, stamps)
    shared = _redis() is not None  # the shared tier exists only beside a server database
    with cache.lock(version):  # one thread of this process computes; the others wait
        entry = cache.entry(key)
        value = entry[2] if entry is not None and entry[0] == stamps else None
        if value is None and shared:
            value = _shared_get(version, codec)
            (SHARED_MISS if value is None else SHARED_HIT).inc()
        if value is None:
            value = (
                _compute_once(version, lambda: _absent_if_none(compute()), codec)
                if shared
                else _absent_if_none(compute())
            )
        return value, cache.put(key, value, stamps)


def _absent_if_none(value: Any) -> Any:
    return ABSENT if value is None else value
