"""Generation stamps shared by every process on one host, through a memory-mapped file.

A scope ("auth", "member:<user id>") hashes to one 8-byte slot. Bumping a scope writes
random bytes to its slot; a cached value is good only while its scope's slot still holds
the stamp read *before* the value was computed. Two scopes sharing a slot only cause an
extra miss, never a stale hit. An aligned 8-byte store is seen whole by the other
processes; a torn read could only look like a change, which is again just a miss.
"""

from __future__ import annotations

import mmap
import os
import zlib

SLOTS = 1 << 16
_WIDTH = 8


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

    def bump(self, scope: str) -> None:
        """Invalidate everything cached under `scope`, in every process of this host."""
        offset = self._offset(scope)
        self._map[offset : offset + _WIDTH] = os.urandom(_WIDTH)
