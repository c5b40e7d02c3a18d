"""The janitor: every process's control thread folds its group's dead workers, off the scrape."""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

from prometheus_client.mmap_dict import MmapedDict

from todoscale.deploy import servers
from todoscale.ops import control, groups, merge, stats, values

COUNT = "todoscale_http_request_duration_seconds_count"


def _dead_worker(folder, requests: int) -> int:
    """A pid that served `requests` requests through the layer's files, then died."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    sink = values.FileValues(folder, proc.pid)
    for _ in range(requests):
        sink.started()
        sink.finished("/a", "GET", 200, 0.002, 1, 0.001)
    sink.close()
    return proc.pid


def _count(folder) -> float:
    page = merge.group(folder).render()
    return sum(float(line.rsplit(" ", 1)[1]) for line in page[COUNT[: -len("_count")]][1]
               if line.startswith(COUNT))  # fmt: skip


def test_a_round_folds_dead_workers_and_leaves_the_living(tmp_path):
    folder = groups.start_group(tmp_path, "web-janitor", {})
    live = values.FileValues(folder, os.getpid())
    live.started()
    live.finished("/a", "GET", 200, 0.002, 0, 0.0)
    dead = [_dead_worker(folder, 2), _dead_worker(folder, 3)]
    before = _count(folder)

    assert groups.fold_dead(folder) == 2
    assert groups.fold_dead(folder) == 0  # nothing left: a round that finds none

    pids = {groups.pid_of(path) for path in folder.iterdir()} - {None}
    assert pids == {os.getpid()}
    assert before == _count(folder) == 6
    rows = MmapedDict.read_all_values_from_file(str(folder / "counter_archive.db"))
    exits = [value for key, value, _ts, _pos in rows if groups.EXITS_METRIC in key]
    assert exits == [2]
    assert not set(dead) & pids


def test_a_round_in_a_group_that_is_gone_does_nothing(tmp_path):
    assert groups.fold_dead(tmp_path / "web-gone") == 0


def test_the_control_thread_folds_dead_workers_within_seconds(tmp_path):
    folder = groups.start_group(tmp_path, "web-thread", {})
    controls = control.Controls(tmp_path, stats.Recorder())
    controls.start("web-thread", folder)
    first = _dead_worker(folder, 4)  # found by the thread's first round or a later one

    deadline = time.monotonic() + 10
    while any(groups.pid_of(path) == first for path in folder.iterdir()):
        assert time.monotonic() < deadline, "the janitor never folded the dead worker"
        time.sleep(0.05)
    later = _dead_worker(folder, 1)
    while any(groups.pid_of(path) == later for path in folder.iterdir()):
        assert time.monotonic() < deadline, "the janitor folded only at its start"
        time.sleep(0.05)

    assert _count(folder) == 5


def _raise_timeout(signum, frame):
    raise TimeoutError("child_exit waited for the metrics lock its own process holds")


def test_gunicorn_child_exit_reentered_by_the_next_sigchld_does_not_wait_on_itself(
    tmp_path, monkeypatch
):
    # gunicorn's master calls child_exit from its SIGCHLD handler: a second worker dying
    # while the handler folds the first runs the handler again, inside the first. The
    # 100-restart test's hang (py-spy: the master blocked in flock, under its own child_exit).
    folder = groups.start_group(tmp_path, "web-reentry", {})
    monkeypatch.setenv(groups.MULTIPROC_ENV, str(folder))
    child_exit = runpy.run_path(str(servers.GUNICORN_CONF))["child_exit"]
    first, second = _dead_worker(folder, 2), _dead_worker(folder, 3)
    fold = groups.add_values

    def fold_then_the_next_death(path, into):  # the signal arrives mid-fold
        monkeypatch.setattr(groups, "add_values", fold)
        os.kill(os.getpid(), signal.SIGUSR1)
        fold(path, into)

    monkeypatch.setattr(groups, "add_values", fold_then_the_next_death)
    before = signal.signal(signal.SIGUSR1, lambda *_: child_exit(None, SimpleNamespace(pid=second)))
    alarm = signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, 5)
    try:
        child_exit(None, SimpleNamespace(pid=first))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, alarm)
        signal.signal(signal.SIGUSR1, before)

    pids = {groups.pid_of(path) for path in folder.iterdir()}
    assert first not in pids
    groups.fold_dead(folder)  # the janitor's next round takes whatever the handler left
    assert _count(folder) == 5
    rows = MmapedDict.read_all_values_from_file(str(folder / "counter_archive.db"))
    assert [value for key, value, _ts, _pos in rows if groups.EXITS_METRIC in key] == [2]


def test_a_round_gives_its_sums_up_when_a_file_was_folded_meanwhile(tmp_path, monkeypatch):
    # The janitor reads without the host's lock; gunicorn's child_exit may fold one of the
    # same workers in that time: its values must be added once, not twice.
    folder = groups.start_group(tmp_path, "web-meanwhile", {})
    first, _second = _dead_worker(folder, 2), _dead_worker(folder, 3)
    summed = groups._sums

    def sums_then_child_exit(sources):
        found = summed(sources)
        monkeypatch.setattr(groups, "_sums", summed)
        with groups.locked(folder.parent):
            groups.retire(folder, first)
        return found

    monkeypatch.setattr(groups, "_sums", sums_then_child_exit)
    assert groups.fold_dead(folder) == 0
    assert _count(folder) == 5
    assert groups.fold_dead(folder) == 1
    assert {groups.pid_of(path) for path in folder.iterdir()} == {None}
    assert _count(folder) == 5


def test_a_scrape_during_a_fold_reads_the_dead_files_and_drops_their_gauges(tmp_path):
    folder = groups.start_group(tmp_path, "web-during", {})
    dead = _dead_worker(folder, 4)
    gauge = folder / f"gauge_livesum_{values.PREFIX}_{dead}.db"
    with groups.claimed(folder) as mine:  # a janitor's fold under way
        assert mine
        with groups.locked(tmp_path):
            assert groups.compact(folder) == 0
            assert not gauge.exists()
            assert (folder / f"histogram_{values.PREFIX}_{dead}.db").exists()
            assert _count(folder) == 4
        with groups.claimed(folder) as again:
            assert not again
    assert groups.fold_dead(folder) == 1
    assert _count(folder) == 4
