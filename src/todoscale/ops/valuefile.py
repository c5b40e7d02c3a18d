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
import re
import struct
from pathlib import Path

INITIAL_SIZE = 1 << 16  # as MmapedDict's: doubled whenever an entry would not fit
_USED = struct.Struct("i")
_LENGTH = _USED.unpack_from


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


class Sums:
    """Values of many files added up by key (the bytes in the files), a run at a time.

    Files of one group repeat the same runs of entries: a histogram child's buckets and sum
    are appended together, byte for byte the same in every worker that served that route,
    only the order of the runs differs. A run's entries are parsed one by one the first time
    it is met (in any file); after that, one `struct` call a run reads its keys and values,
    the keys are compared with the run's as bytes (a run that differs in any byte is parsed
    afresh), and each run's values are summed at the end, column by column."""

    def __init__(self, runs: dict[bytes, list[_Run]] | None = None) -> None:
        self._runs = _RUNS if runs is None else runs
        # Each run's fields (entry, value, entry, value...) in every file it was found in.
        self._rows: dict[_Run, list[tuple[bytes | float, ...]]] = {}

    def add(self, path: Path) -> None:
        """Add each value of the file at `path`."""
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < 8:
                return
            # Mapped, not read: a dead worker's histograms are megabytes of keys, compared in
            # place and never copied.
            with mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_READ) as data:
                used = _LENGTH(data, 0)[0]
                if used > size:
                    raise RuntimeError(f"{path}: a metrics file is corrupted")
                pos = 8
                while pos < used:
                    pos = self._known(data, pos, used) or self._learn(path, data, pos, used)

    def _known(self, data: mmap.mmap, pos: int, used: int) -> int:
        """Add the known run at `pos`, if one is there; where the next entry starts, else 0."""
        length = _LENGTH(data, pos)[0]
        for run in self._runs.get(data[pos : pos + 4 + length + (8 - (length + 4) % 8)], ()):
            if pos + run.size <= used:
                fields = run.reader.unpack_from(data, pos)
                if fields[::2] == run.entries:
                    rows = self._rows.get(run)
                    if rows is None:
                        self._rows[run] = [fields]
                    else:
                        rows.append(fields)
                    return pos + run.size
        return 0

    def _learn(self, path: Path, data: mmap.mmap, pos: int, used: int) -> int:
        """Parse the entries of one run at `pos` (those of one series), note the run, add it."""
        entries: list[bytes] = []
        keys: list[bytes] = []
        start, child = pos, None
        while pos < used:
            length = _LENGTH(data, pos)[0]
            if pos + 4 + length > used:
                raise RuntimeError(f"{path}: a metrics file is corrupted")
            key = data[pos + 4 : pos + 4 + length]
            if child is not None and _child(key) != child:
                break
            child = _child(key)
            size = _entry(length)
            entries.append(data[pos : pos + size - 16])
            keys.append(key)
            pos += size
        run = _Run(tuple(entries), tuple(keys), pos - start)
        known = self._runs.setdefault(entries[0], [])
        if len(known) < _MAX_RUNS_A_START:
            known.append(run)
        self._rows.setdefault(run, []).append(run.reader.unpack_from(data, start))
        return pos

    def items(self) -> dict[bytes, float]:
        """The sums by key."""
        total: dict[bytes, float] = {}
        for run, rows in self._rows.items():
            sums = [sum(column) for column in list(zip(*rows, strict=True))[1::2]]
            for key, value in zip(run.keys, sums, strict=True):
                total[key] = total.get(key, 0.0) + value
        return total


def add_values(path: Path, into: Sums) -> None:
    """Add each value of the file at `path` into `into`."""
    into.add(path)


def _entry(length: int) -> int:
    """The bytes of an entry whose key has `length` bytes: length, padded key, two doubles."""
    return 4 + length + (8 - (length + 4) % 8) + 16


_LE_LABEL = re.compile(rb'"le": "[^"]*"(?:, )?')


def _child(key: bytes) -> bytes:
    """The series a key's value is part of: its metric and its labels but `le` (the buckets
    and the sum of a histogram's child are one run). Only groups entries into runs: a run
    is always checked byte for byte, so a wrong guess here costs speed, never a value."""
    metric, _, rest = key.partition(b'", "')
    return metric + _LE_LABEL.sub(b"", rest.partition(b'", ')[2])


class _Run:
    """Consecutive entries of a file, as bytes (length, key and padding), with their keys."""

    __slots__ = ("entries", "keys", "reader", "size")

    def __init__(self, entries: tuple[bytes, ...], keys: tuple[bytes, ...], size: int) -> None:
        self.entries, self.keys, self.size = entries, keys, size
        # Each entry's bytes up to its value, the value, its timestamp skipped.
        self.reader = struct.Struct("=" + "".join(f"{len(entry)}sd8x" for entry in entries))


# The runs met by this process (bounded by the series a group can have, which the label
# rules bound), kept for the life of the process: the same runs come back in every file.
_RUNS: dict[bytes, list[_Run]] = {}
_MAX_RUNS_A_START = 8
