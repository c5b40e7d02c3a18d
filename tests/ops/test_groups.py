"""The metrics folder: groups owned and wiped at start, dead workers folded into archives."""

from __future__ import annotations

import os
import subprocess
import sys

from prometheus_client.mmap_dict import MmapedDict, mmap_key

from todoscale.ops import groups

KEY = mmap_key("todoscale_test", "todoscale_test_total", [], [], "a test counter")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _counter(folder, pid, value):
    values = MmapedDict(str(folder / f"counter_{pid}.db"))
    values.write_value(KEY, value, 0.0)
    values.close()


def test_starting_a_group_wipes_its_folder_and_exports_the_variable(tmp_path):
    stale = tmp_path / "web-8000"
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"old")
    env: dict[str, str] = {}

    folder = groups.start_group(tmp_path, "web-8000", env)

    assert env[groups.MULTIPROC_ENV] == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == [groups.OWNER_FILE]
    assert groups.owner(folder) == (os.getpid(), groups.process_start(os.getpid()))


def test_a_dead_workers_counters_are_added_to_the_archive_and_its_files_removed(tmp_path):
    folder = groups.start_group(tmp_path, "web", {})
    first, second = _dead_pid(), _dead_pid()
    _counter(folder, first, 3)
    _counter(folder, second, 4)
    (folder / f"gauge_livesum_{first}.db").write_bytes(b"")

    with groups.locked(tmp_path):
        assert groups.compact(folder) == 2

    names = sorted(p.name for p in folder.iterdir())
    assert names == ["counter_archive.db", groups.OWNER_FILE]
    rows = MmapedDict.read_all_values_from_file(str(folder / "counter_archive.db"))
    archived = {key: value for key, value, _ts, _pos in rows}
    assert archived[KEY] == 7
    exits = [value for key, value in archived.items() if groups.EXITS_METRIC in key]
    assert exits == [2]


def test_live_workers_files_stay(tmp_path):
    folder = groups.start_group(tmp_path, "web", {})
    _counter(folder, os.getpid(), 1)

    with groups.locked(tmp_path):
        assert groups.compact(folder) == 0
    assert (folder / f"counter_{os.getpid()}.db").exists()


def test_a_group_whose_owner_died_is_removed_by_the_sweep(tmp_path):
    folder = tmp_path / "web-9000"
    folder.mkdir()
    (folder / groups.OWNER_FILE).write_text(f"{_dead_pid()} 1\n")
    live = groups.start_group(tmp_path, "web-9001", {})

    groups.sweep(tmp_path)

    assert not folder.exists()
    assert live.exists()


def test_a_reused_pid_is_not_mistaken_for_the_process_that_started_the_group():
    assert groups.alive(os.getpid())
    assert not groups.alive(os.getpid(), start="1")
    assert not groups.alive(_dead_pid())


def test_group_names_are_safe_folder_names():
    assert groups.group_name("web", "127.0.0.1:8000") == "web-127-0-0-1-8000"
    assert groups.group_name("socketio", "[::1]:8100") == "socketio-1-8100"
