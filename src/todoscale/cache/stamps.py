"""Generation stamps: on one host through a memory-mapped file, across hosts in Redis.

A scope ("auth:<user id>", "member:<user id>") hashes to one 8-byte slot. Bumping a scope writes
random bytes to its slot; a cached value is good only while its scope's slot still holds
the stamp read *before* the value was computed. Two scopes sharing a slot only cause an
extra miss, never a stale hit. An aligned 8-byte store is seen whole by the other
processes; a torn read could only look like a change, which is again just a miss.
"""

from __future__ import annotations

import mmap
import os
import zlib
from collections.abc import Sequence
from typing import cast

import redis

SLOTS = 1 << 16
_WIDTH = 8

# What a cached value was computed under: each scope it depends on, with the stamp it had.
Stamps = tuple[tuple[str, bytes], ...]


class SharedStamps:
    """The stamps file of one instance folder, mapped into this process."""

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < SLOTS * _WIDTH:
                os.ftruncate(fd, SLOTS * _WIDTH)
            self._map = mmap.mmap(fd, SLOTS * _WIDTH)
        finally:
            os.close(fd)

    @staticmethod
    def _offset(scope: str) -> int:
        return (zlib.crc32(scope.encode()) % SLOTS) * _WIDTH

    def read(self, scope: str) -> bytes:
        """The current stamp of `scope`."""
        offset = self._offset(scope)
        return self._map[offset : offset + _WIDTH]

    def read_many(self, scopes: Sequence[str]) -> list[bytes]:
        """The current stamps of `scopes`."""
        return [self.read(scope) for scope in scopes]

    def bump(self, *scopes: str) -> None:
        """Invalidate everything cached under `scopes`, in every process of this host."""
        for scope in scopes:
            offset = self._offset(scope)
            self._map[offset : offset + _WIDTH] = os.urandom(_WIDTH)


class StampsUnavailable(Exception):
    """The stamp store cannot be reached: callers bypass the cache (fail open)."""


class RedisStamps:
    """Stamps in Redis, shared by every process on every host.

    A stamp is a random value, never a counter that a restart could bring back: a scope
    Redis does not know (first use, or Redis restarted and forgot everything) gets a new
    random value, so entries cached before a restart can never match again.
    """

    PREFIX = "todoscale:stamp:"
    KEEP_SECONDS = 7 * 24 * 3600  # far longer than any entry lives

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def read_many(self, scopes: Sequence[str]) -> list[bytes]:
        """The current stamps of `scopes`, in one round trip while they exist."""
        keys = [self.PREFIX + scope for scope in scopes]
        try:
            values = cast(list[bytes | None], self._client.mget(keys))
            missing = [key for key, value in zip(keys, values, strict=True) if value is None]
            if missing:
                with self._client.pipeline(transaction=False) as pipe:
                    for key in missing:
                        pipe.set(key, os.urandom(_WIDTH), nx=True, ex=self.KEEP_SECONDS)
                    pipe.mget(missing)
                    found = dict(zip(missing, pipe.execute()[-1], strict=True))
                values = [found.get(key, value) for key, value in zip(keys, values, strict=True)]
        except redis.RedisError as exc:
            raise StampsUnavailable(str(exc)) from exc
        return [value or b"" for value in values]

    def bump(self, *scopes: str) -> None:
        """Give each of `scopes` a new random stamp, in one round trip."""
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for scope in scopes:
                    pipe.set(self.PREFIX + scope, os.urandom(_WIDTH), ex=self.KEEP_SECONDS)
                pipe.execute()
        except redis.RedisError as exc:
            raise StampsUnavailable(str(exc)) from exc
