"""A small in-process cache whose entries carry the stamps of the scopes they depend on."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import redis
from flask import Flask, current_app

from todoscale.cache.stamps import RedisStamps, SharedStamps, Stamps, StampsUnavailable

logger = logging.getLogger(__name__)

EXTENSION = "todoscale.local_cache"
REDIS_EXTENSION = "todoscale.redis"
# In every entry's stamps: bumped when the stamp store comes back after an outage,
# during which writes could not bump their scopes.
EPOCH = "epoch"


class StampStore(Protocol):
    """Where stamps live: a file of one host (`SharedStamps`) or Redis (`RedisStamps`)."""

    def read_many(self, scopes: Sequence[str]) -> list[bytes]: ...

    def bump(self, *scopes: str) -> None: ...


class LocalCache:
    """Values cached in this process, each valid while the shared stamps of the scopes it
    depends on are unchanged.

    Use: `stamps = cache.stamps(scope, ...)` before reading the database, then
    `cache.put(key, value, stamps)`; `cache.get(key)` answers only while no process has
    bumped any of those scopes since (`tiers.memoize` does all of it). Entries also expire
    after `ttl` seconds, so a change made outside the app (by hand in SQL) is seen within
    that time. When the stamp store
    cannot be reached the cache steps aside (fail open) and the database answers.
    """

    WARN_EVERY = 30.0

    def __init__(
        self,
        store: StampStore,
        *,
        max_entries: int = 5_000,
        ttl: float = 60.0,
        retry_after: float = 5.0,
    ) -> None:
        self.store = store
        self.max_entries = max_entries
        self.ttl = ttl
        self.retry_after = retry_after
        self._entries: dict[str, tuple[Stamps, float, Any]] = {}
        self._down_until = 0.0
        self._warned_at = -self.WARN_EVERY
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def lock(self, key: str) -> threading.Lock:
        """A lock of this process for computing `key`: one thread computes, others wait."""
        with self._locks_guard:
            if len(self._locks) > self.max_entries:
                self._locks.clear()  # bounded; a lock dropped while held costs one recompute
            return self._locks.setdefault(key, threading.Lock())

    def _fail(self, exc: Exception) -> None:
        self._entries.clear()
        now = time.monotonic()
        self._down_until = now + self.retry_after
        if now - self._warned_at >= self.WARN_EVERY:
            self._warned_at = now
            logger.warning("cache stamps unavailable, serving from the database: %s", exc)

    def _available(self) -> bool:
        if not self._down_until:
            return True
        if time.monotonic() < self._down_until:
            return False
        try:
            self.store.bump(EPOCH)  # writes during the outage bumped nothing: void it all
        except StampsUnavailable as exc:
            self._fail(exc)
            return False
        self._down_until = 0.0
        logger.warning("cache stamps reachable again; the local cache is back")
        return True

    def stamps(self, *scopes: str) -> Stamps | None:
        """Read the scopes' stamps before computing the value you will `put` (None: the
        store is unavailable, so do not cache)."""
        if not self._available():
            return None
        every = (EPOCH, *scopes)
        try:
            return tuple(zip(every, self.store.read_many(every), strict=True))
        except StampsUnavailable as exc:
            self._fail(exc)
            return None

    def get(self, key: str) -> Any | None:
        """The cached value, or None when absent, expired, invalidated or unverifiable."""
        entry = self.entry(key)
        return None if entry is None else entry[2]

    def entry(self, key: str) -> tuple[Stamps, float, Any] | None:
        """The entry of `key` (its stamps, when it expires, its value) while it holds."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if time.monotonic() >= entry[1] or not self.holds(entry[0]):
            self._entries.pop(key, None)
            return None
        return entry

    def holds(self, stamps: Stamps) -> bool:
        """True while every scope of `stamps` still has that stamp (False when unverifiable)."""
        if not self._available():
            return False
        try:
            current = self.store.read_many([scope for scope, _ in stamps])
        except StampsUnavailable as exc:
            self._fail(exc)
            return False
        return all(now == then for now, (_, then) in zip(current, stamps, strict=True))

    def put(self, key: str, value: Any, stamps: Stamps | None) -> float:
        """Remember `value`, computed after `stamps` were read (nothing when None); return
        when the entry expires (a `time.monotonic()`)."""
        expires = time.monotonic() + self.ttl
        if stamps is None:
            return expires
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; the working set refills at once
        self._entries[key] = (stamps, expires, value)
        return expires

    def bump(self, *scopes: str) -> None:
        """Invalidate `scopes` everywhere: called after the commit that changed them."""
        if not scopes or not self._available():
            return  # the epoch bump on recovery covers it
        try:
            self.store.bump(*scopes)
        except StampsUnavailable as exc:
            self._fail(exc)


def local_cache() -> LocalCache | None:
    """This app's local cache, or None when it is off (see `TODOSCALE_LOCAL_CACHE`)."""
    cache: LocalCache | None = current_app.extensions.get(EXTENSION)
    return cache


def invalidate(*scopes: str) -> None:
    """Bump `scopes` after a commit that changed what they cover (no-op when the cache is off).

    Commits made through the session bump their scopes themselves (`cache.writes`): this is
    for changes made around it (by hand in SQL, on a connection of its own).
    """
    cache = local_cache()
    if cache is not None:
        cache.bump(*scopes)


# Short timeouts: a Redis that hangs must cost a request a quarter second, not a minute.
REDIS_OPTIONS = {"socket_timeout": 0.25, "socket_connect_timeout": 0.25}


def _store(app: Flask) -> StampStore | None:
    """Where this app's stamps live, or None when no store reaches every writer.

    SQLite is one host by nature, so a file of the instance folder reaches every writer.
    With a server database several hosts may write: their stamps must live in Redis.
    `on` without Redis asserts that this host is the only one.
    """
    mode = app.config["LOCAL_CACHE"]
    if mode not in {"auto", "on", "off"}:
        raise ValueError(f"TODOSCALE_LOCAL_CACHE must be auto, on or off, not {mode!r}")
    if mode == "off":
        return None
    sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    if not sqlite and app.config.get("REDIS_URL"):
        client = redis.Redis.from_url(app.config["REDIS_URL"], **REDIS_OPTIONS)
        app.extensions[REDIS_EXTENSION] = client
        return RedisStamps(client)
    if sqlite or mode == "on":
        return SharedStamps(os.path.join(app.instance_path, "cache-stamps"))
    return None


def init_app(app: Flask) -> None:
    """Turn the cache on where its stamps reach every process that could write.

    The shared tier (the same Redis client, see `tiers`) serves server databases only: measured
    here, a loopback Redis GET (~46 us) costs more than SQLite's indexed page query
    (~14 us), while a PostgreSQL query costs several times more than either.
    """
    store = _store(app)
    if store is not None:
        app.extensions[EXTENSION] = LocalCache(store, ttl=app.config["LOCAL_CACHE_TTL"])
