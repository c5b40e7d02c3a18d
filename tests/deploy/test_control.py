"""Talking to a real supervisord through its XML-RPC interface: status, pids, stop.

Each test starts a small supervisord of its own (shell programs, no app) in `tmp_path`
and stops it by process id, even when the test fails.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from todoscale.bench import procs
from todoscale.deploy import control, supervisord

pytestmark = pytest.mark.database_free

# A program that ignores SIGTERM and forks a child that ignores it too: only a kill of its
# whole process group stops it.
STUBBORN = ["/bin/sh", "-c", "trap '' TERM; sleep 300 & sleep 300 & wait"]


def _program(folder: Path, name: str, command: list[str]) -> supervisord.Program:
    return supervisord.Program(name, command, log=str(folder / f"{name}.log"), directory="/")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Path]:
    """A supervisord running `stubborn` and `sleeper` from `tmp_path`; stopped after."""
    programs = [_program(tmp_path, "stubborn", STUBBORN)]
    programs.append(_program(tmp_path, "sleeper", ["/bin/sleep", "300"]))
    daemon = supervisord.Daemon(tmp_path, logs=tmp_path)
    supervisord.config_path(tmp_path).write_text(supervisord.render("a test", programs, {}, daemon))
    subprocess.run(supervisord.command(tmp_path), check=True, timeout=60)
    try:
        deadline = time.monotonic() + 30
        while len(control.running_pids(tmp_path)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        yield tmp_path
    finally:
        control.stop(tmp_path, timeout=5)


def test_nothing_running_answers_nothing(tmp_path):
    assert control.supervisord_pid(tmp_path) is None
    assert not control.listening(tmp_path)
    assert control.stop(tmp_path, timeout=1) == []


def test_status_reads_as_supervisorctl_prints_it(running):
    conf = supervisord.config_path(running)
    argv = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf), "status"]
    printed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    ours = control.status_lines(control.programs(running))

    # Name and state columns as supervisorctl prints them (the uptime may tick meanwhile).
    assert [line[:43] for line in ours.splitlines()] == [
        line[:43] for line in printed.stdout.splitlines()
    ]
    assert set(control.running_pids(running)) == {"stubborn", "sleeper"}


def test_stop_kills_by_group_whatever_outlives_its_patience(running):
    supervisor = control.supervisord_pid(running)
    stubborn = control.running_pids(running)["stubborn"]
    forked = procs.group_members(stubborn)
    assert len(forked) == 3, "the shell and its two children"

    stopped = control.stop(running, timeout=2)

    assert stopped[0] == supervisor
    assert stubborn in stopped
    assert [pid for pid in [supervisor, *forked] if procs.alive(pid)] == []
    assert not control.listening(running)
