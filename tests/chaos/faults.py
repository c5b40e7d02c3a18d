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
from tests.chaos.load import Step, audit, drive, launch, outcome, percentile

HALF = 0.5  # the faults run at half of the measured capacity (issue 13)
WARMUP = 2.0
# make test's background load: a fixed modest rate, no capacity search (seconds of it).
FAST_RATE = 20.0
BACKGROUND_BOUND = 900.0  # seconds a background load lasts at most, when nobody stops it


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
    for script in scripts:
        script.start()
    try:
        # 2 s steps bounded: each of the 200 users acts once per 8 s at 25/s, and a 1 s step
        # delivered 82 % of it at a load average of 12 (with p99 315 ms): no capacity found.
        steps = search_steps()
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


def search_steps() -> list[Step]:
    """The capacity search's steps: from 25/s up by 1.25 x every 5 s (under `make chaos`), or
    by 2 x every 2 s."""
    factor, seconds = (1.25, 5) if scale() == "full" else (2.0, 2)
    return [Step(25 * factor**n, seconds, f"search {25 * factor**n:.0f}/s") for n in range(40)]


class Background:
    """The driver in a process of its own for as long as a fault that is no fixed script
    lasts: under `make chaos` the capacity search, then its load at HALF of that capacity;
    in make test a fixed FAST_RATE at once. `start` returns once that load runs (the driver
    touched its step's file), `stop` ends it (a stop file the driver watches) and hands back
    the driver's result; its request timeline is on the driver's clock (`at`)."""

    def __init__(self, url: str, tokens: list[str], folder: Path) -> None:
        self.url, self.tokens, self.folder = url, tokens, folder
        self.marker, self.stop_file = folder / "load.started", folder / "load.stop"
        self.proc: Any = None
        self.result: dict[str, Any] = {}

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *_exc: object) -> None:
        """Kill the driver, by its id, when the test ended without stopping it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def start(self, timeout: float = 600) -> None:
        """Start the driver; return once its load at the fault's rate has begun."""
        load = {"seconds": BACKGROUND_BOUND, "label": "fault", "timeline": True,
                "started_file": str(self.marker)}  # fmt: skip
        options: dict[str, Any] = {"stop_file": str(self.stop_file), "warmup": WARMUP}
        if scale() == "full":
            steps = search_steps()
            options.update(search=True, p99_limit=1.0)
            options["then"] = [
                {"factor": 0, "seconds": 30, "label": "pause"},  # the search's backlog drained
                {"factor": HALF, "seconds": 2, "label": "settle"},
                {"factor": HALF, **load},
            ]
        else:
            steps = [Step(FAST_RATE, **load)]
        self.proc, _budget = launch(self.url, self.tokens, steps, self.folder, **options)
        began = time.monotonic()
        while not self.marker.exists():
            if self.proc.poll() is not None:
                found = outcome(self.proc, self.folder)
                raise AssertionError(f"the driver ended first: capacity {found['capacity']}")
            assert time.monotonic() - began < timeout, "the driver's load did not begin"
            time.sleep(0.05)

    def stop(self) -> dict[str, Any]:
        """End the load (every request in flight answered first); the driver's result."""
        if self.proc is None:
            return self.result
        self.stop_file.touch()
        try:
            self.proc.wait(timeout=120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.result = outcome(self.proc, self.folder)
        self.proc = None
        return self.result

    def at(self, moment: float) -> float:
        """A time.monotonic() moment in seconds of the driver's timeline."""
        return moment - float(self.result["clock"])

    def load(self) -> dict[str, Any]:
        """The step of the fault's load."""
        return step(self.result, "fault")

    def figure(self, app: Any, until: float | None = None) -> tuple[str, dict[str, Any]]:
        """The driver's part of a fault's figure line (its rate, its 5xx, socket errors and
        acknowledged writes lost, audited against `app`'s database), and those counts: of
        the fault's load and its drain, or of the requests sent before `until` (a moment of
        time.monotonic()) when given."""
        fault, drain = self.load(), self.result["drain"]
        sent = fault["timeline"]
        if until is not None:
            sent = [entry for entry in sent if entry[0] < self.at(until)]
        errors_5xx = sum(status >= 500 for _began, _end, _ok, status in sent)
        sockets = sum(status == 0 for _began, _end, _ok, status in sent)
        if until is None:
            errors_5xx += sum(
                n for key, n in drain["statuses"].items() if key.split(":")[1].startswith("5")
            )
            sockets += drain["socket_errors"]
        lost, partial, acknowledged = audit(app, self.result["todos"])
        rate = (f"{fault['rate']:.0f}_req/s(0.5x_capacity_{self.result['capacity']:.0f})"
                if scale() == "full" else f"{fault['rate']:.0f}_req/s(fixed)")  # fmt: skip
        counts = {"5xx": errors_5xx, "socket_errors": sockets, "lost": lost, "partial": partial,
                  "acknowledged": acknowledged, "requests": len(sent)}  # fmt: skip
        text = (
            f"load_{rate}_{len(sent)}_requests_in_{fault['seconds']:.0f}s:{errors_5xx}_x_5xx,"
            f"{sockets}_socket_errors,{lost}_lost_of_{acknowledged}_acknowledged"
        )
        return text, counts


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
