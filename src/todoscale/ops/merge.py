"""A process group's metrics files merged into Prometheus text, incrementally.

prometheus_client's own merge parses every entry of every file at each scrape (a JSON key
per entry, a Sample per value, the page built from those): with a day's worth of series
behind 4 workers that is most of a scrape's time. Here what never changes is parsed once
and kept for the life of the scraping process: an entry's key, its place in the file (a
file only ever appends entries: a key never moves) and its line on the page. A scrape then
reads each file's values in one `struct` call, adds them up per series and writes the
lines. Dead workers' files are folded into the group's archives by the sweep
(`groups.retire`), so the files read are the live workers' and the archives.

The result is what `MultiProcessCollector.merge(accumulate=True)` gives, labelled with
the group's `service`: counters and histograms summed over live and dead workers (buckets
cumulative, `_count` the last bucket), gauges combined by their multiprocess mode (the
`live*` ones only over live workers: the sweep deletes a dead worker's gauge files).
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

from prometheus_client.utils import floatToGoString

# An entry: a 4-byte key length, the key padded to 8 bytes, the value and its timestamp.
_HEADER = struct.Struct("i")
_GAUGE_PID = "pid"


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def line(name: str, labels: Iterable[tuple[str, str]]) -> str:
    """A sample's line up to its value (`name{a="1",b="2"} `), labels sorted like
    prometheus_client's page."""
    text = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels))
    return f"{name}{{{text}}} " if text else f"{name} "


@dataclass
class Family:
    """One metric family of the page: its header and the slots of its samples, in order."""

    header: str
    slots: list[int] = field(default_factory=list)


@dataclass
class _File:
    """What is known of one file: how much of it was parsed, and where each value is."""

    ino: int
    used: int = 8
    slots: list[int] = field(default_factory=list)
    # One struct per layout: every value (and timestamp) of the file in one call.
    reader: struct.Struct = field(default_factory=lambda: struct.Struct("=8x"))
    fmt: list[str] = field(default_factory=lambda: ["=8x"])
    # The first and last keys parsed, where they were: a file replaced by another of the
    # same name (a reused inode) has other keys there.
    marks: list[tuple[int, bytes]] = field(default_factory=list)
    # A counter's or histogram's values put in the order of their slots (`ranked`), and
    # which set of slots that is: files with the same series, in whatever order they were
    # written, are summed column by column.
    order: Callable[[tuple[float, ...]], tuple[float, ...]] = tuple
    ranked: int = -1

    def same(self, ino: int, used: int, data: mmap.mmap) -> bool:
        """Whether `data` is still the file parsed so far (grown, never rewritten)."""
        return (
            self.ino == ino
            and self.used <= used
            and all(data[pos : pos + len(key)] == key for pos, key in self.marks)
        )


class Group:
    """The merged view of one group folder, kept between scrapes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.service = folder.name
        self._slots: dict[tuple[str, str, tuple[tuple[str, str], ...]], int] = {}
        self._lines: list[str] = []
        self._modes: list[str] = []  # "sum" for counters and histograms, else the gauge's mode
        self._families: dict[str, Family] = {}
        # A histogram child's bucket slots in order of their bound, and its _count slot.
        self._buckets: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, int]]] = {}
        self._counts: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self._files: dict[str, _File] = {}
        self._keys: dict[bytes, tuple[str, str, tuple[tuple[str, str], ...], str]] = {}
        # The sets of slots files have (sorted), each numbered once.
        self._ranks: dict[tuple[int, ...], int] = {}
        self._ranked: list[tuple[int, ...]] = []
        self._lock = threading.Lock()

    def render(self) -> dict[str, tuple[str, list[str]]]:
        """Each family's header and its sample lines, from the files as they are now."""
        with self._lock:
            values = self._collect()
            self._accumulate(values)
            page: dict[str, tuple[str, list[str]]] = {}
            for name, family in self._families.items():
                lines = [
                    f"{self._lines[slot]}{floatToGoString(values[slot])}\n"
                    for slot in family.slots
                    if slot in values
                ]
                if lines:
                    page[name] = (family.header, lines)
            return page

    def _collect(self) -> dict[int, float]:
        values: dict[int, float] = {}
        stamps: dict[int, float] = {}
        rows: dict[int, list[tuple[float, ...]]] = {}
        seen = set()
        for entry in os.scandir(self.folder):
            name = entry.name
            if not name.endswith(".db"):
                continue
            seen.add(name)
            parts = name[:-3].split("_")
            typ = parts[0]
            try:
                read = self._read(entry, typ, parts)
            except FileNotFoundError:
                continue  # deleted by a sweep since the listing (a dead worker's gauge)
            if read is None:
                continue
            known, numbers = read
            if typ == "gauge":
                self._gauge(parts[1], known.slots, numbers, values, stamps)
            elif known.slots:
                rows.setdefault(known.ranked, []).append(known.order(numbers))
        self._add_rows(rows, values)
        for gone in set(self._files) - seen:
            del self._files[gone]
        self._prune_ranks()
        return values

    def _prune_ranks(self) -> None:
        """Forget the sets of slots of files since grown or gone, when they pile up."""
        if len(self._ranked) > 2 * len(self._files) + 64:
            self._ranks, self._ranked = {}, []
            for known in self._files.values():
                if known.ranked >= 0:
                    self._rank(known)

    def _add_rows(self, rows: dict[int, list[tuple[float, ...]]], values: dict[int, float]) -> None:
        """Counters' and histograms' values: the files of one set of slots summed column by
        column, then added to their slots (no Python step a value a file)."""
        get = values.get
        for ranked, columns in rows.items():
            sums = columns[0] if len(columns) == 1 else map(sum, zip(*columns, strict=True))
            for slot, value in zip(self._ranked[ranked], sums, strict=True):
                values[slot] = get(slot, 0.0) + value

    def _gauge(
        self,
        mode: str,
        slots: list[int],
        numbers: tuple[float, ...],
        values: dict[int, float],
        stamps: dict[int, float],
    ) -> None:
        for index, slot in enumerate(slots):
            value, stamp = numbers[2 * index], numbers[2 * index + 1]
            if slot not in values:
                values[slot], stamps[slot] = value, stamp
            elif mode in ("sum", "livesum"):
                values[slot] += value
            elif mode in ("max", "livemax"):
                values[slot] = max(values[slot], value)
            elif mode in ("min", "livemin"):
                values[slot] = min(values[slot], value)
            elif mode in ("mostrecent", "livemostrecent") and stamp > stamps[slot]:
                values[slot], stamps[slot] = value, stamp

    def _accumulate(self, values: dict[int, float]) -> None:
        """Histogram buckets made cumulative; each child's count is its last bucket."""
        for child, buckets in self._buckets.items():
            total = 0.0
            present = False
            for _bound, slot in buckets:
                if slot in values:
                    present = True
                    total += values[slot]
                    values[slot] = total
            if present:
                values[self._counts[child]] = total

    def _read(
        self, entry: os.DirEntry[str], typ: str, parts: list[str]
    ) -> tuple[_File, tuple[float, ...]] | None:
        """What is known of one file (new entries parsed) and its values (a gauge's with
        their timestamps, in pairs). The file is mapped, not read: its keys are most of its
        bytes and only the new ones are ever looked at."""
        with open(entry.path, "rb") as handle:
            data = _mapped(handle.fileno())
            if data is None:
                return None
            with data:
                used = _HEADER.unpack_from(data)[0]
                known = self._files.get(entry.name)
                ino = entry.inode()
                if known is None or not known.same(ino, used, data):
                    known = self._files[entry.name] = _File(ino)
                if known.used < used:
                    self._parse(known, data, used, typ, parts)
                return known, known.reader.unpack_from(data)

    def _parse(self, known: _File, data: mmap.mmap, used: int, typ: str, parts: list[str]) -> None:
        pos = known.used
        while pos < used:
            length = _HEADER.unpack_from(data, pos)[0]
            if length + pos > used:
                raise RuntimeError(f"{self.folder}: a metrics file is corrupted")
            key = data[pos + 4 : pos + 4 + length]
            last = (pos + 4, key)
            if not known.marks:
                known.marks.append(last)
            padded = length + (8 - (length + 4) % 8)
            known.fmt.append(f"{4 + padded}xdd" if typ == "gauge" else f"{4 + padded}xd8x")
            known.slots.append(self._slot(key, typ, parts))
            pos += 4 + padded + 16
        known.marks[1:] = [last]
        known.used = used
        known.reader = struct.Struct("".join(known.fmt))
        if typ != "gauge":
            self._rank(known)

    def _rank(self, known: _File) -> None:
        ranked = sorted(range(len(known.slots)), key=known.slots.__getitem__)
        key = tuple(known.slots[index] for index in ranked)
        known.ranked = self._ranks.setdefault(key, len(self._ranks))
        if known.ranked == len(self._ranked):
            self._ranked.append(key)
        known.order = itemgetter(*ranked) if len(ranked) > 1 else tuple

    def _slot(self, key: bytes, typ: str, parts: list[str]) -> int:
        parsed = self._keys.get(key)
        if parsed is None:
            metric, sample, labels, help_text = json.loads(key)
            parsed = self._keys[key] = (metric, sample, tuple(sorted(labels.items())), help_text)
        metric, sample, labels, help_text = parsed
        mode = parts[1] if typ == "gauge" else "sum"
        if typ == "gauge" and mode in ("all", "liveall"):
            labels = (*labels, (_GAUGE_PID, parts[2]))
        series = (metric, sample, labels)
        slot = self._slots.get(series)
        if slot is None:
            slot = self._new_slot(series, typ, help_text, mode)
        return slot

    def _new_slot(
        self, series: tuple[str, str, tuple[tuple[str, str], ...]], typ: str, help_text: str,
        mode: str,
    ) -> int:  # fmt: skip
        metric, sample, labels = series
        family = self._family(metric, typ, help_text)
        slot = self._add(series, family, mode)
        if typ == "histogram" and sample == f"{metric}_bucket":
            bound = dict(labels)["le"]
            child = (metric, tuple(item for item in labels if item[0] != "le"))
            buckets = self._buckets.setdefault(child, [])
            buckets.append((float(bound), slot))
            buckets.sort()
            if child not in self._counts:
                self._counts[child] = self._add((metric, f"{metric}_count", child[1]), family, mode)
        return slot

    def _add(
        self, series: tuple[str, str, tuple[tuple[str, str], ...]], family: Family, mode: str
    ) -> int:
        slot = self._slots[series] = len(self._lines)
        self._lines.append(line(series[1], (*series[2], ("service", self.service))))
        self._modes.append(mode)
        family.slots.append(slot)
        return slot

    def _family(self, metric: str, typ: str, help_text: str) -> Family:
        family = self._families.get(metric)
        if family is None:
            shown = f"{metric}_total" if typ == "counter" else metric
            doc = help_text.replace("\\", r"\\").replace("\n", r"\n")
            family = self._families[metric] = Family(
                f"# HELP {shown} {doc}\n# TYPE {shown} {typ}\n"
            )
        return family


def _mapped(fd: int) -> mmap.mmap | None:
    """The file mapped whole, its used length within the mapping (a writer grows the file
    before it writes a longer used length: a length past the mapping means it grew since
    the size was read, and the second look sees it grown); None while it is too short."""
    for _ in range(3):
        size = os.fstat(fd).st_size
        if size < 8:
            return None
        data = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        if _HEADER.unpack_from(data)[0] <= size:
            return data
        data.close()
    raise RuntimeError("a metrics file says it holds more than it does")


_groups: dict[Path, Group] = {}
_groups_lock = threading.Lock()


def group(folder: Path) -> Group:
    """The merged view of `folder`, made at its first scrape by this process."""
    with _groups_lock:
        view = _groups.get(folder)
        if view is None:
            view = _groups[folder] = Group(folder)
        return view


def forget(keep: Iterable[Path]) -> None:
    """Drop the views of folders that are gone (a group whose owner died)."""
    with _groups_lock:
        for folder in set(_groups) - set(keep):
            del _groups[folder]
