"""One file of a process's metric values in prometheus_client's multiprocess format, written
in place, and the values of such files added up fast. Only the standard library: the sweep
uses it in gunicorn's master too (see `groups`).

The format is `MmapedDict`'s: a 4-byte used length and 4 bytes of padding, then entries of a
4-byte key length, the key (JSON) padded to 8 bytes, the value and a timestamp (doubles).
An entry never moves once written, so a value's place is found once; keys are kept as the
bytes in the file, never decoded.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

INITIAL_SIZE = 1 << 16  # as MmapedDict's: doubled whenever an entry would not fit
_USED = struct.Struct("i")
_LENGTH = _USED.unpack_from
_VALUE = struct.Struct("d").unpack_from


class ValueFile:
    """One file of values in prometheus_client's multiprocess format; the caller serializes
    every call (the request layer's lock; for an archive, the host's metrics lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        size = os.fstat(self._fd).st_size
        if size == 0:
            size = INITIAL_SIZE
            os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)
        self.values = memoryview(self._map).cast("d")
        self._index: dict[bytes, int] = {}
        self._used = _USED.unpack_from(self._map, 0)[0]
        if self._used == 0:
            self._used = 8
            self._map[0:4] = _USED.pack(8)
        else:  # an archive, or a file left by a process that had this pid: keep its entries
            self._read_entries()

    def index(self, key: bytes) -> int:
        """Where `key`'s value is in `values` (its entry appended, at 0, when new). May map
        the file afresh: read `values` again after calling this."""
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = self._append(key)
        return found

    def _append(self, key: bytes) -> int:
        padded = key + b" " * (8 - (len(key) + 4) % 8)
        entry = struct.pack(f"i{len(padded)}sdd", len(key), padded, 0.0, 0.0)
        end = self._used + len(entry)
        if end > len(self._map):
            self._grow(end)
        self._map[self._used : end] = entry
        # The used length last: a reader never sees an entry before it is whole.
        self._map[0:4] = _USED.pack(end)
        self._used = end
        return (end - 16) // 8

    def _grow(self, end: int) -> None:
        size = len(self._map)
        while size < end:
            size *= 2
        os.ftruncate(self._fd, size)
        self.values.release()
        self._map.close()
        self._map = mmap.mmap(self._fd, size)
        self.values = memoryview(self._map).cast("d")

    def _read_entries(self) -> None:
        pos = 8
        while pos < self._used:
            length = _USED.unpack_from(self._map, pos)[0]
            key = self._map[pos + 4 : pos + 4 + length]
            pos += 4 + length + (8 - (length + 4) % 8)
            self._index[key] = pos // 8
            pos += 16

    def close(self) -> None:
        """Unmap and close the file."""
        self.values.release()
        self._map.close()
        os.close(self._fd)


def add_values(path: Path, into: dict[bytes, float]) -> None:
    """Add each value of the file at `path` into `into`, by its key's bytes. The file is
    mapped, not read: a dead worker's histograms are megabytes, mostly keys, and only each
    key's slice is copied (300 files of 100 workers: 338 ms of CPU mapped, 588 read)."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < 8:
            return
        with mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_READ) as data:
            used = _LENGTH(data, 0)[0]
            if used > size:
                raise RuntimeError(f"{path}: a metrics file is corrupted")
            get = into.get
            pos = 8
            while pos < used:
                length = _LENGTH(data, pos)[0]
                if pos + 4 + length > used:
                    raise RuntimeError(f"{path}: a metrics file is corrupted")
                key = data[pos + 4 : pos + 4 + length]
                pos += 4 + length + (8 - (length + 4) % 8)
                into[key] = get(key, 0.0) + _VALUE(data, pos)[0]
                pos += 16
