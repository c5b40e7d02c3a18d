"""A small in-process cache whose entries carry the stamp of the scope they depend on."""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask, current_app

from todoscale.cache.stamps import SharedStamps

EXTENSION = "todoscale.local_cache"


Stamps = tuple[tuple[str, bytes], ...]


class LocalCache:
    """Values cached in this process, each valid while the shared stamps of the scopes it
    depends on are unchanged.

    Use: `stamps = cache.stamps(scope, ...)` before reading the database, then
    `cache.put(key, value, stamps)`; `cache.get(key)` answers only while no process has
    bumped any of those scopes since. Entries also expire after `ttl` seconds, so a change
    made outside the app (by hand in SQL) is seen within that time.
    """

    def __init__(
        self, stamps: SharedStamps, *, max_entries: int = 5_000, ttl: float = 60.0
    ) -> None:
        self.shared = stamps
        self.max_entries = max_entries
        self.ttl = ttl
        self._entries: dict[str, tuple[Stamps, float, Any]] = {}

    def stamps(self, *scopes: str) -> Stamps:
        """Read the scopes' stamps: do it before computing the value you will `put`."""
        return tuple((scope, self.shared.read(scope)) for scope in scopes)

    def get(self, key: str) -> Any | None:
        """The cached value, or None when absent, expired or invalidated."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        stamps, expires, value = entry
        read = self.shared.read
        if time.monotonic() >= expires or any(read(scope) != stamp for scope, stamp in stamps):
            self._entries.pop(key, None)
            return None
        return value

    def put(self, key: str, value: Any, stamps: Stamps) -> None:
        """Remember `value`, computed after `stamps` were read."""
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; the working set refills at once
        self._entries[key] = (stamps, time.monotonic() + self.ttl, value)

    def bump(self, scope: str) -> None:
        """Invalidate `scope` everywhere: call it after the commit that changed it."""
        self.shared.bump(scope)


def local_cache() -> LocalCache | None:
    """This app's local cache, or None when it is off (see `TODOSCALE_LOCAL_CACHE`)."""
    cache: LocalCache | None = current_app.extensions.get(EXTENSION)
    return cache


def invalidate(*scopes: str) -> None:
    """Bump `scopes` after a commit that changed what they cover (no-op when the cache is off)."""
    cache = local_cache()
    if cache is not None:
        for scope in scopes:
            cache.bump(scope)


def init_app(app: Flask) -> None:
    """Turn the local cache on where its shared stamps reach every process that could write.

    The stamps live in a file of the instance folder, shared by the processes of one host:
    enough for SQLite, which is one host by nature. With a server database several hosts
    may write, so `auto` leaves the cache off there.
    """
    mode = app.config["LOCAL_CACHE"]
    if mode not in {"auto", "on", "off"}:
        raise ValueError(f"TODOSCALE_LOCAL_CACHE must be auto, on or off, not {mode!r}")
    sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    if mode == "on" or (mode == "auto" and sqlite):
        stamps = SharedStamps(os.path.join(app.instance_path, "cache-stamps"))
        app.extensions[EXTENSION] = LocalCache(stamps, ttl=app.config["LOCAL_CACHE_TTL"])
