"""Mixed traffic (tests/chaos/load.py) against the real server: its capacity, then sustained
load at 0.7 x, overload at 2 x and a web worker SIGKILLed every few seconds at 0.5 x, each
with the figure issue 13 asks of it."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.chaos.conftest import ApiServer
from tests.chaos.faults import respawn, workers
from tests.chaos.figures import bounded, report, scale
from tests.chaos.load import Step, audit, drive, search_capacity, seed_tokens, totals

P99_LIMIT = 1.0  # the search's bound on a good step


@dataclass
class Mixed:
    """One run of the driver: the capacity search, then steps at factors of the capacity
    found; the run's result, and its book audited against the database right after."""

    result: dict[str, Any]
    lost: int
    partial: int
    acknowledged: int

    def step(self, label: str) -> dict[str, Any]:
        """The step of that label; a failure when the run never came to it (no capacity)."""
        steps = [step for step in self.result["steps"] if step["label"] == label]
        assert steps, f"no {label} step: the capacity search found {self.result['capacity']}"
        return steps[0]


@pytest.fixture(scope="session")
def mixed(app: Flask, api_server: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Mixed:
    """The capacity search (the offered rate stepped up until a step has an error, p99 over
    1 s or less than 90 % of its rate delivered; the capacity is the last good step's rate),
    then, in the same run: sustained load at 0.7 x, overload at 2 x and the recovery at 0.5 x."""
    tokens = seed_tokens(app, "mix")
    full = scale() == "full"
    then = [
        {"factor": 0, "seconds": 30, "label": "pause"},  # the search's last step drained
        {"factor": 0.5, "seconds": 1, "label": "settle"},
        {"factor": 0.7, "seconds": bounded(fast=2, full=300), "label": "sustained"},
        {"factor": 2.0, "seconds": bounded(fast=2, full=60), "label": "overload"},
        {"factor": 0.5, "seconds": bounded(fast=3, full=20), "label": "after", "timeline": True},
    ]
    result = search_capacity(
        api_server.url, tokens, tmp_path_factory.mktemp("mixed"),
        start=50, factor=1.25 if full else 2.0, seconds=5 if full else 1, then=then,
        p99_limit=P99_LIMIT,
    )  # fmt: skip
    return Mixed(result, *audit(app, result["todos"]))


def test_capacity_is_found_by_stepping_the_rate(mixed: Mixed) -> None:
    found = mixed.result["capacity"]
    searched = [step for step in mixed.result["steps"] if step["label"].startswith("search")]
    ladder = ",".join(
        f"{step['rate']:.0f}:{step['achieved']:.0f}/s,p99_{step['p99'] * 1000:.0f}ms"
        f"{',failed_' + str(step['failed']) if step['failed'] else ''}"
        for step in searched
    )
    cpu = mixed.result["driver_cpu_seconds"] / mixed.result["seconds"]
    report(
        "capacity",
        f"{found:.0f}_req/s_mixed_traffic,200_users({ladder}),driver_cpu_{cpu:.0%}",
        "found(no_error,p99<=1s,>=90%_of_rate_delivered)",
        held=found > 0,
    )
    assert found > 0, searched
    assert searched[-1]["rate"] != found, "the search never found the server's limit"


@pytest.mark.xfail(
    scale() == "full",
    strict=True,
    raises=AssertionError,
    reason="a finding, not fixed: gunicorn's worker recycling (max_requests 10,000) closes "
    "the keep-alive connections a recycling worker holds, and a create or edit just sent on "
    "one gets no answer (91 in 5 minutes here; docs/RELIABILITY.md). The bounded version "
    "runs fewer requests than one recycle. strict: once it holds, this marker must go",
)
def test_sustained_load_at_seven_tenths_of_capacity(mixed: Mixed) -> None:
    step = mixed.step("sustained")
    errors, sockets = _count(step, "5"), step["socket_errors"]
    read, write = step["p99_read"] * 1000, step["p99_write"] * 1000
    report(
        "sustained-load",
        f"{errors}_x_5xx,{sockets}_socket_errors,p99_read_{read:.0f}ms,"
        f"p99_write_{write:.0f}ms,{step['failed']}_failed"
        f"_at_{step['rate']:.0f}_req/s(0.7x,{step['achieved']:.0f}_delivered)"
        f"_for_{step['seconds']:.0f}s",
        "0_x_5xx,0_socket_errors,p99_read<=250ms,p99_write<=400ms",
        held=not errors and not sockets and read <= 250 and write <= 400,
    )
    assert not step["failed"], step["failures"]
    assert errors == 0 and sockets == 0
    assert not step["statuses"].get("delete:404_after_retry")  # nothing broke, nothing resent
    # The p99 goals are the figure's (held or not, in the table), never a timed assertion:
    # a 2 s step's p99 on a shared 2-core machine is its neighbours' as much as the server's.


def _count(step: dict[str, Any], leading: str) -> int:
    """Answers whose status starts with `leading` (`5`: every 5xx)."""
    return sum(n for key, n in step["statuses"].items() if key.split(":")[1].startswith(leading))


def _recovery(step: dict[str, Any]) -> float | None:
    """Seconds from the step's start until every request started after it is answered, and
    within P99_LIMIT; None when that never came within the step."""
    start = step["started"]
    bad = [end for began, end, ok, _status in step["timeline"] if began >= start
           and (not ok or end - began > P99_LIMIT)]  # fmt: skip
    if not bad:
        return 0.0
    late = max(bad) - start
    return late if late < step["seconds"] - P99_LIMIT else None


def test_overload_at_twice_capacity_refuses_honestly_and_recovers(mixed: Mixed) -> None:
    over, then, run = mixed.step("overload"), mixed.step("after"), totals(mixed.result)
    errors_500, bare = run["errors_500"], run["bare_refusals"]
    others = Counter(key for key in run["failures"] if not key.startswith("socket_error"))
    back = _recovery(then)
    lost, partial = mixed.lost, mixed.partial
    report(
        "overload",
        f"{errors_500}_x_500,{run['refusals']}_refusals_with_Retry-After,{bare}_without,"
        f"recovery_{'>' + format(then['seconds'], '.0f') if back is None else f'{back:.1f}'}s,"
        f"{lost}_lost_of_{mixed.acknowledged}_acknowledged,{partial}_partial"
        f"_at_{over['rate']:.0f}_req/s(2x,{over['achieved']:.0f}_delivered,"
        f"p99_{over['p99'] * 1000:.0f}ms)_for_{over['seconds']:.0f}s",
        "0_x_500,refusals_429_or_503_with_Retry-After,recovery<=10s,0_lost_acknowledged",
        held=not errors_500 and not bare and back is not None and back <= 10 and not lost,
    )
    assert errors_500 == 0, run["failures"]
    assert bare == 0 and not others, others
    assert lost == 0 and partial == 0  # the recovery's time is the figure's, as p99s are


def _killer(master: int, every: float, kills: int, out: list[float | None], folder: Path) -> None:
    """Once the driver's users are warm, SIGKILL the eldest web worker every `every` s,
    `kills` times, timing each respawn; then end the driver's step (its stop file)."""
    try:
        began = time.monotonic()
        while not (folder / "ready").exists():
            if time.monotonic() - began > 60:
                return
            time.sleep(0.05)
        for _ in range(kills):
            time.sleep(every)
            alive = workers(master)
            victim = min(alive)
            os.kill(victim, signal.SIGKILL)
            out.append(respawn(master, victim, alive - {victim}))
        time.sleep(every / 2)  # the requests after the last kill count too
    finally:
        (folder / "stop").touch()


def test_web_worker_sigkilled_under_load(
    app: Flask, api_server: ApiServer, mixed: Mixed, tmp_path: Path
) -> None:
    every, kills = bounded(fast=2, full=10), bounded(fast=2, full=12)
    server = api_server  # its workers respawn: the tests after this one find it whole
    capacity = mixed.result["capacity"]
    assert capacity > 0, "no capacity was found (test_capacity_is_found... says why)"
    try:
        tokens = seed_tokens(app, "kill")
        respawns: list[float | None] = []
        folder = tmp_path / "driver"
        folder.mkdir()
        killer = threading.Thread(
            target=_killer, args=(server.proc.pid, every, kills, respawns, folder)
        )
        killer.start()
        try:
            rate = 0.5 * capacity
            longest = kills * (every + 15) + every  # ended by the killer when it is done
            result = drive(server.url, tokens, [Step(rate, longest, "kills")], folder,
                           warmup=0.0, ready_file=str(folder / "ready"),
                           stop_file=str(folder / "stop"))  # fmt: skip
        finally:
            killer.join(timeout=60)
    finally:
        assert len(workers(server.proc.pid)) == 2, "the server did not get its workers back"
    run = totals(result)
    failed = run["failed"]
    lost, partial, acked = audit(app, result["todos"])
    slowest = max((r for r in respawns if r is not None), default=None)
    held = (
        len(respawns) == kills
        and None not in respawns
        and failed <= kills
        and slowest is not None
        and slowest <= 5
        and not partial
        and not lost
    )
    report(
        "web-worker-sigkill",
        f"{failed}_failed_in_{len(respawns)}_kills({dict(run['failures'])}),"
        f"respawn_max_{'none' if slowest is None else f'{slowest:.2f}'}s,{partial}_partial,"
        f"{lost}_lost_of_{acked}_acknowledged_at_{rate:.0f}_req/s(0.5x)_every_{every}s",
        "<=1_failed_per_kill,respawn<=5s,0_partial_writes",
        held=held,
    )
    assert len(respawns) == kills and None not in respawns, respawns
    # Failed requests per kill are the figure's, not an assertion: a SIGKILL takes with it the
    # writes in flight on that worker, which no client sends again (about 2 a kill at 0.5x,
    # docs/RELIABILITY.md), so a bound here fails or passes with the timing of the kills.
    # Only a failure of another kind than the killed connections is a defect.
    assert all(kind.startswith("socket_error:") for kind in run["failures"]), (
        run["failures"],
        result["oddities"],
    )
    assert slowest is not None and slowest <= 5, respawns
    assert partial == 0 and lost == 0
