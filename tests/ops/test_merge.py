"""The incremental merge of a group's files says what prometheus_client's own merge says."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.utils import floatToGoString

from todoscale.ops import groups, merge

BUCKETS = ("0.005", "0.1", "+Inf")
_LINE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write(path, entries):
    values = MmapedDict(str(path))
    for key, value in entries:
        current, _ = values.read_value(key)
        values.write_value(key, current + value, 0.0)
    values.close()


def _histogram(folder, pid, route, observations):
    entries = []
    for seconds in observations:
        bound = next(b for b in BUCKETS if b == "+Inf" or seconds <= float(b))
        for le in BUCKETS:  # every bucket is written, only the right one counts
            key = mmap_key("t_seconds", "t_seconds_bucket", ["route", "le"], [route, le], "t")
            entries.append((key, 1.0 if le == bound else 0.0))
        entries.append((mmap_key("t_seconds", "t_seconds_sum", ["route"], [route], "t"), seconds))
    _write(folder / f"histogram_{pid}.db", entries)


def _counter(folder, pid, route, value):
    key = mmap_key("t_requests", "t_requests_total", ["route"], [route], 'say "hi"\\')
    _write(folder / f"counter_{pid}.db", [(key, value)])


def _gauge(folder, pid, value):
    key = mmap_key("t_in_flight", "t_in_flight", [], [], "in flight")
    _write(folder / f"gauge_livesum_{pid}.db", [(key, value)])


def _ours(folder) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    page = merge.group(folder).render()
    values = {}
    for _header, lines in page.values():
        for line in lines:
            name, labels, value = _LINE.match(line.rstrip("\n")).groups()
            pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or "")
            values[(name, frozenset(pairs))] = float(value)
    return values


def _theirs(folder) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    files = [str(path) for path in folder.glob("*.db")]
    values = {}
    for metric in MultiProcessCollector.merge(files, accumulate=True):
        for sample in metric.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "pid"}
            labels["service"] = folder.name
            values[(sample.name, frozenset(labels.items()))] = sample.value
    return values


def test_live_and_dead_workers_are_merged_as_prometheus_client_merges_them(tmp_path):
    folder = groups.start_group(tmp_path, "web-merge", {})
    live = os.getpid()
    dead = [_dead_pid(), _dead_pid()]
    for n, pid in enumerate([live, *dead]):
        _histogram(folder, pid, "/a", [0.001, 0.05, 3.0][: n + 1])
        _histogram(folder, pid, "/b", [0.2])
        _counter(folder, pid, "/a", n + 1)
    _gauge(folder, live, 2)
    _gauge(folder, dead[0], 5)  # a dead worker's live gauge: gone after the sweep

    with groups.locked(tmp_path):
        groups.compact(folder)
    first = _ours(folder)

    assert first == _theirs(folder)
    service = ("service", "web-merge")
    assert first[("t_requests_total", frozenset({("route", "/a"), service}))] == 6
    assert first[("t_seconds_count", frozenset({("route", "/a"), service}))] == 6
    inf = frozenset({("route", "/a"), ("le", "+Inf"), service})
    assert first[("t_seconds_bucket", inf)] == 6
    assert first[("t_in_flight", frozenset({service}))] == 2
    assert first[("todoscale_worker_exits_total", frozenset({service}))] == 2

    # The files change between scrapes: more values, new series, another worker dies.
    _histogram(folder, live, "/a", [0.002])
    _histogram(folder, live, "/c", [0.09])
    _counter(folder, live, "/new", 7)
    later = _dead_pid()
    _histogram(folder, later, "/a", [0.5])
    _counter(folder, later, "/a", 10)
    with groups.locked(tmp_path):
        groups.compact(folder)

    second = _ours(folder)
    assert second == _theirs(folder)
    assert second[("t_requests_total", frozenset({("route", "/a"), service}))] == 16
    assert second[("t_requests_total", frozenset({("route", "/new"), service}))] == 7
    assert second[("t_seconds_count", frozenset({("route", "/a"), service}))] == 8
    assert second[("todoscale_worker_exits_total", frozenset({service}))] == 3


def test_a_replaced_file_is_read_afresh(tmp_path):
    folder = groups.start_group(tmp_path, "web-replaced", {})
    _counter(folder, os.getpid(), "/a", 1)
    assert _ours(folder) == _theirs(folder)
    (folder / f"counter_{os.getpid()}.db").unlink()  # a new file of the same name, other keys
    _counter(folder, os.getpid(), "/z", 4)

    assert _ours(folder) == _theirs(folder)


def test_the_page_lines_are_prometheus_clients(tmp_path):
    folder = groups.start_group(tmp_path, "web-lines", {})
    _counter(folder, os.getpid(), 'a "quoted"\\path\n', 1)

    page = merge.group(folder).render()

    header, lines = page["t_requests"]
    assert header == '# HELP t_requests_total say "hi"\\\\\n# TYPE t_requests_total counter\n'
    assert lines == [
        f't_requests_total{{route="a \\"quoted\\"\\\\path\\n",service="web-lines"}} '
        f"{floatToGoString(1.0)}\n"
    ]


def test_a_file_grown_between_its_size_and_its_mapping_is_read_whole(tmp_path, monkeypatch):
    # A live writer grows its file, then writes the longer used length: a scrape that read
    # the size before the growth maps too little, and must look again (it once took the
    # used length cut at the mapping for a corrupted file).
    folder = groups.start_group(tmp_path, "web-grown", {})
    pid = os.getpid()
    _counter(folder, pid, "/a", 3)
    path = folder / f"counter_{pid}.db"
    with open(path, "r+b") as handle:
        used = int.from_bytes(handle.read(4), "little")
    stat = os.fstat
    stale = []

    def stale_once(fd):
        found = stat(fd)
        if not stale:
            stale.append(found)
            return os.stat_result((*found[:6], used - 8, *found[7:]))
        return found

    monkeypatch.setattr(merge.os, "fstat", stale_once)
    ours = _ours(folder)
    assert stale
    assert ours == _theirs(folder)
    assert ours[("t_requests_total", frozenset({("route", "/a"), ("service", "web-grown")}))] == 3
