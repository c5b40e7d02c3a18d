"""Faults timed against the load driver's steps: a script of actions (stop Redis, start it
again, ...) that begins when the driver starts a step, each action's end recorded on the
system-wide monotonic clock the driver's timeline is measured on; and the driver's run that
the faults of a module share (its capacity search, then steps at half of that capacity);
and a gunicorn master's workers, watched as one is killed and the master forks another."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.chaos.figures import report, scale
from tests.chaos.load import Step, drive, percentile

HALF = 0.5  # the faults run at half of the measured capacity (issue 13)
WARMUP = 2.0


@dataclass
class Action:
    """`do` run `at` seconds after the step began."""

    at: float
    name: str
    do: Callable[[], None]


class Script(threading.Thread):
    """Waits for the driver to touch `marker` (a step's `started_file`), then runs its
    actions in order at their times; `times` holds when each ended (time.monotonic())."""

    def __init__(self, marker: Path, actions: list[Action]) -> None:
        super().__init__(daemon=True, name=f"fault {marker.name}")
        self.marker, self.actions = marker, actions
        self.times: dict[str, float] = {}
        self.error: BaseException | None = None
        self.cancel = threading.Event()

    def run(self) -> None:
        try:
            while not self.marker.exists():
                if self.cancel.wait(0.01):
                    return  # the driver never came to the step (it found no capacity)
            began = time.monotonic()
            self.times["step"] = began
            for action in self.actions:
                time.sleep(max(0.0, began + action.at - time.monotonic()))
                action.do()
                self.times[action.name] = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which raises it
            self.error = exc

    def at(self, name: str, result: dict[str, Any]) -> float:
        """When action `name` ended, in seconds of the driver's timeline."""
        assert self.error is None, self.error
        assert name in self.times, f"the fault's {name!r} never ran: {self.times}"
        return self.times[name] - float(result["clock"])


def run_with_faults(
    url: str, tokens: list[str], folder: Path, then: list[dict[str, Any]], scripts: list[Script]
) -> dict[str, Any]:
    """The capacity search (as tests/chaos/test_load.py's, but from 25/s, as a machine this
    busy can miss 50, after a longer warm-up), then the `then` steps at their factors of that
    capacity, while the scripts wait for their steps; the result."""
    full = scale() == "full"
    for script in scripts:
        script.start()
    try:
        # 2 s steps bounded: each of the 200 users acts once per 8 s at 25/s, and a 1 s step
        # delivered 82 % of it at a load average of 12 (with p99 315 ms): no capacity found.
        factor, seconds = (1.25, 5) if full else (2.0, 2)
        steps = [Step(25 * factor**n, seconds, f"search {25 * factor**n:.0f}/s") for n in range(40)]
        # The warm-up (every user's first request at once: seconds on a busy machine) is
        # followed by WARMUP s at the first rate, unmeasured, so that no backlog of it falls
        # into the first 1 s step (it delivered 76 % of 25/s once at load 18: no capacity).
        result: dict[str, Any] = drive(
            url, tokens, steps, folder, search=True, p99_limit=1.0, then=then, warmup=WARMUP
        )
    finally:
        for script in scripts:
            script.cancel.set()
            script.join(timeout=120)
    for script in scripts:
        assert script.error is None, script.error
    return result


def step(result: dict[str, Any], label: str) -> dict[str, Any]:
    """The step of that label; a failure when the run never came to it (no capacity)."""
    found = [each for each in result["steps"] if each["label"] == label]
    assert found, f"no {label} step: the capacity search found {result['capacity']}"
    return found[0]


def count(steps: list[dict[str, Any]], status: str) -> int:
    """How many answers of `steps` had exactly that status (`500`)."""
    return sum(
        n for each in steps for key, n in each["statuses"].items() if key.split(":")[1] == status
    )


def longest(entries: list[tuple[float, float, bool, int]]) -> float:
    """The longest request of a timeline, in seconds (0 when it is empty)."""
    return max((end - began for began, end, _ok, _status in entries), default=0.0)


def p99(entries: list[tuple[float, float, bool, int]]) -> float:
    """The 99th percentile of a timeline's latencies, in seconds."""
    return percentile([end - began for began, end, _ok, _status in entries], 0.99)


def workers(master: int) -> set[int]:
    """The pids of a gunicorn master's workers (its children)."""
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except FileNotFoundError:
        return set()
    return {int(pid) for pid in children}


def heartbeats(pid: int) -> dict[int, float]:
    """The gunicorn heartbeat files (unlinked `wgunicorn-*`) the process holds: inode ->
    modification time. A worker inherits its elder siblings' from the master, besides its
    own."""
    found = {}
    folder = Path(f"/proc/{pid}/fd")
    try:
        for fd in folder.iterdir():
            if "wgunicorn-" in os.readlink(fd):
                stat = os.stat(fd)
                found[stat.st_ino] = stat.st_mtime
    except OSError:
        pass  # it went away meanwhile
    return found


def serving(pid: int, siblings: set[int]) -> bool:
    """Whether a new worker has entered its serving loop: it stamps its own heartbeat file
    (the one no elder sibling holds) with a monotonic time on every turn of that loop, the
    first after its app is loaded; until then the file bears the wall time it was made at."""
    elder = set().union(*(heartbeats(sibling) for sibling in siblings))
    own = [mtime for inode, mtime in heartbeats(pid).items() if inode not in elder]
    return len(own) == 1 and own[0] < time.monotonic() + 60


def respawn(master: int, killed: int, others: set[int], timeout: float = 15) -> float | None:
    """Seconds until the master has a new worker that serves, or None."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if any(serving(pid, others) for pid in workers(master) - others - {killed}):
            return time.monotonic() - began
        time.sleep(0.01)
    return None


def first_answer(entries: list[Any], since: float, wanted: range) -> float | None:
    """Seconds from `since` to the first answer after it whose status is in `wanted`."""
    ends = [end for _began, end, _ok, status in entries if end >= since and status in wanted]
    return min(ends) - since if ends else None


def seconds_or_never(value: float | None) -> str:
    """A figure's duration: `1.23s`, or `never`."""
    return "never" if value is None else f"{value:.2f}s"


def during(entries: list[Any], start: float, end: float) -> list[Any]:
    """The requests of a timeline that began while a fault lasted."""
    return [entry for entry in entries if start <= entry[0] < end]


def report_redis_refused(
    fault: str, result: dict[str, Any], script: Script, lost: int, acknowledged: int,
    jobs: str = "no_jobs_in_the_load",
) -> tuple[dict[str, Any], list[Any], int]:  # fmt: skip
    """Print the Redis-refused figure of a run; hand back its step, the requests sent while
    Redis was down and the step's 500s, for the test's own assertions."""
    before, refused = step(result, "before"), step(result, "refused")
    down, up = script.at("down", result), script.at("up", result)
    sent = during(refused["timeline"], down, up)
    errors_500 = count([refused], "500")
    growth = (refused["p99_read"] - before["p99_read"]) * 1000
    report(
        fault,
        f"{errors_500}_x_500,{refused['failed']}_failed,{refused['refusals']}_refusals,"
        f"p99_read_{before['p99_read'] * 1000:.0f}ms_before,{refused['p99_read'] * 1000:.0f}ms"
        f"_down_and_back({growth:+.0f}ms),p99_{p99(sent) * 1000:.0f}ms_while_down,"
        f"{lost}_lost_of_{acknowledged}_acknowledged,{jobs}"
        f"_at_{refused['rate']:.0f}_req/s(0.5x)_down_{up - down:.1f}s",
        "0_x_500,p99_read_grows<=50ms,0_lost_acknowledged",
        held=not errors_500 and growth <= 50 and not lost,
    )
    return refused, sent, errors_500
