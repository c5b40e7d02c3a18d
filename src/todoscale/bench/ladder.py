"""Running the ladder: seed scratch instances, start every chosen server, measure the cases
interleaved (A B C A B C ...) at each connection count, stop everything by process id."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from todoscale.bench import floors, load, procs, summary, workload
from todoscale.bench.rungs import Case
from todoscale.bench.setups import NEEDS_SERVICES, SETUPS, Context, Target

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/todoscale_bench"
REDIS_URL = "redis://127.0.0.1:6379/11"
PAGE = 500


@dataclass
class Options:
    """What to run: the cases, how often, how long, at which connection counts."""

    cases: list[Case]
    runs: int
    seconds: int
    connections: list[int]
    warmup: int
    out: Path
    postgres_url: str = POSTGRES_URL
    redis_url: str = REDIS_URL
    python_load: bool = False


@dataclass
class Prepared:
    """The started servers, the request of each case, and what could not run, and why."""

    targets: dict[str, Target] = field(default_factory=dict)
    requests: dict[str, Request] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    plans: dict[str, Any] = field(default_factory=dict)


def _services(ctx: Context, options: Options, needed: bool) -> str | None:
    """Seed PostgreSQL when a chosen case needs it; return why it cannot be, or None."""
    if not needed:
        return None
    ctx.redis_url = procs.fresh_redis(options.redis_url)
    if ctx.redis_url is None:
        return f"Redis did not answer at {options.redis_url}"
    ctx.postgres_url = procs.fresh_postgres(options.postgres_url)
    if ctx.postgres_url is None:
        return f"PostgreSQL did not answer at {options.postgres_url}"
    ctx.postgres_template = ctx.scratch / "template-postgres"
    workload.seed(ctx.postgres_template, ctx.postgres_url)
    workload.analyze(ctx.postgres_url)
    return None


def _skips(cases: list[Case], services_missing: str | None) -> dict[str, str]:
    skipped = {}
    nginx_missing = shutil.which("nginx") is None
    for case in cases:
        if case.setup in NEEDS_SERVICES and services_missing:
            skipped[case.key] = services_missing
        elif case.setup in {"nginx", "cluster"} and nginx_missing:
            skipped[case.key] = "nginx is not installed: apt-get install nginx"
    return skipped


def _plans(ctx: Context, prepared: Prepared) -> None:
    """The reference read's query plan without and with the index (and on PostgreSQL)."""
    bare = workload.copy(ctx.template, ctx.scratch / "plan-no-index")
    workload.drop_index(bare)
    prepared.plans["sqlite, index dropped (rung 1)"] = workload.sqlite_plan(bare)
    prepared.plans["sqlite, with the index (rung 2 on)"] = workload.sqlite_plan(ctx.template)
    prepared.plans[f"sqlite, keyset page {PAGE} (rung 5)"] = workload.sqlite_plan(
        ctx.template, PAGE
    )
    if ctx.postgres_url:
        prepared.plans["postgresql, with the index"] = workload.postgres_plan(ctx.postgres_url)


Request = tuple[str, dict[str, str], load.Write | None]
NAIVE = {
    "hello": ("/index", None),
    "naive": ("/todo", None),
    "naive500": (f"/todo?start={(PAGE - 1) * workload.PAGE_SIZE}", None),
    "naive-create": ("/todo", load.Write("POST", ('{"content": "written by the bench"}',))),
}
# A word of one title in 10,000 ("Todo number 7777"), and one of every title.
SEARCHES = {"search-rare": "7777", "search-common": "number"}
CREATE = load.Write("POST", ('{"title": "written by the bench"}',))
# Completed, then reopened, in turn: each request changes a todo (a write, never a no-op),
# spread over twice as many todos as the run has connections at most, so that no two
# requests in flight edit one todo (which answers the later one 412, as it should).
COMPLETE = load.Write("PATCH", ('{"completed": true}', '{"completed": false}'))


def _request(case: Case, target: Target, tokens: dict[str, Any], connections: int) -> Request:
    if case.request in NAIVE:
        path, write = NAIVE[case.request]
        return target.base + path, {}, write
    if case.request in {"create", "complete"}:
        if case.setup not in tokens:
            tokens[case.setup] = workload.writer(target.base, 2 * connections)
        auth, todo_ids = tokens[case.setup]
        if case.request == "create":
            return f"{target.base}/api/v1/todos", auth, CREATE
        paths = tuple(f"/api/v1/todos/{todo_id}" for todo_id in todo_ids)
        return f"{target.base}{paths[0]}", auth, replace(COMPLETE, paths=paths)
    if case.setup not in tokens:
        tokens[case.setup] = {"Authorization": f"Bearer {workload.token(target.base)}"}
    auth = tokens[case.setup]
    if case.request in SEARCHES:
        return f"{target.base}/api/v1/todos?q={SEARCHES[case.request]}&limit=10", auth, None
    if case.request == "page500":
        return target.base + workload.page_path(target.base, auth, PAGE), auth, None
    return target.base + workload.READ_PATH, auth, None


def _say(text: str, since: float) -> None:
    print(f"{text} ({time.monotonic() - since:.1f} s)", file=sys.stderr, flush=True)


def prepare(ctx: Context, options: Options, prepared: Prepared) -> None:
    """Seed, then start the servers of every case that can run here; note the others."""
    since = time.monotonic()
    _say(f"Scratch instances in {ctx.scratch}: {workload.seed(ctx.template)}", since)
    needed = any(case.setup in NEEDS_SERVICES for case in options.cases)
    prepared.skipped = _skips(options.cases, _services(ctx, options, needed))
    if any(case.setup in {"naive", "naive-write"} for case in options.cases):
        ctx.naive_database = ctx.scratch / "naive.db"
        floors.seed(str(ctx.naive_database), workload.TODOS)
    _plans(ctx, prepared)
    runnable = [case for case in options.cases if case.key not in prepared.skipped]
    for case in runnable:  # started together: they boot in parallel
        if case.setup not in prepared.targets:
            prepared.targets[case.setup] = SETUPS[case.setup](ctx)
    for target in prepared.targets.values():
        target.wait_ready()
    _say(f"{len(prepared.targets)} servers ready", since)
    tokens: dict[str, Any] = {}
    for case in runnable:
        prepared.requests[case.key] = _request(
            case, prepared.targets[case.setup], tokens, max(options.connections)
        )
    _say("Logged in, pages found", since)


class Progress:
    """The live display: rung, run, seconds left (rich's progress bar)."""

    def __init__(self, total: float) -> None:
        from rich.progress import (  # the bench extra: imported only when the bench runs
            BarColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        self.bar = Bar(
            TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), transient=False
        )
        self.task = self.bar.add_task("starting", total=total)

    def step(self, text: str, seconds: float) -> None:
        """Say what runs now; count `seconds` once it is done (call `done`)."""
        self.bar.update(self.task, description=text)
        self._pending = seconds

    def done(self) -> None:
        """Advance past the step just run."""
        self.bar.advance(self.task, self._pending)


def settle(target: Target, limit: float = 15.0) -> None:
    """Wait until `target` answers its ready path within 50 ms (or `limit` passes): wrk stops
    at the end of a run, but a server still works through the requests it had accepted (the
    writes wait for SQLite's lock), and that must not fall into the next case's run."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        took = load.probe(target.base + target.ready_path, {}, 5)
        if took is not None and took < 50:
            return
        time.sleep(0.2)


def _one(request: Request, target: Target, c: int, seconds: int, python: bool) -> load.Result:
    url, headers, write = request
    before = target.cpu_seconds()
    result = load.run(
        url, connections=c, seconds=seconds, headers=headers, python=python, write=write
    )
    if write is not None:
        settle(target)  # its CPU until then counts: the work was this run's
    result.server_cpu_s = target.cpu_seconds() - before
    return result


def measure(options: Options, prepared: Prepared) -> dict[str, dict[str, Any]]:
    """Warm each case up, then `runs` interleaved rounds per connection count; summarize."""
    keys = list(prepared.requests)
    per_round = len(keys) * options.seconds
    total = len(options.connections) * (len(keys) * options.warmup + options.runs * per_round)
    progress = Progress(total)
    figures: dict[str, dict[str, Any]] = {key: {} for key in keys}
    by_key = {case.key: case for case in options.cases}
    with progress.bar:
        for c in options.connections:
            results: dict[str, list[load.Result]] = {key: [] for key in keys}
            for key in keys if options.warmup else []:  # --quick: no warm-up
                url, headers, write = prepared.requests[key]
                progress.step(f"warm-up c{c}: {key}", options.warmup)
                load.run(
                    url, connections=c, seconds=options.warmup, headers=headers,
                    python=options.python_load, write=write,
                )  # fmt: skip
                progress.done()
            for n in range(options.runs):
                for key in keys:
                    target = prepared.targets[by_key[key].setup]
                    progress.step(f"c{c} run {n + 1}/{options.runs}: rung {key}", options.seconds)
                    request, python = prepared.requests[key], options.python_load
                    results[key].append(_one(request, target, c, options.seconds, python))
                    progress.done()
            for key in keys:
                figures[key][str(c)] = summary.summarize(results[key])
    return figures


def _leftovers(pids: set[int]) -> list[int]:
    """Processes the bench started that are still alive (by pid, or in one of its groups)."""
    alive = [pid for pid in pids if procs.alive(pid)]
    members = [pid for pgid in pids for pid in procs.group_members(pgid)]
    return sorted(set(alive + members))


def stop(targets: list[Target]) -> set[int]:
    """Stop every target at once (each by its process ids); return the ids they had."""
    pids: set[int] = set()
    for target in targets:
        pids |= target.pids()
    with ThreadPoolExecutor(max_workers=max(len(targets), 1)) as pool:
        list(pool.map(lambda target: target.stop(), targets))
    return pids


@contextmanager
def scratch(out: Path) -> Iterator[Context]:
    """A scratch folder for the instances, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="todoscale-bench-"))
    try:
        yield Context(scratch=folder, out=out, ports=procs.Ports(), template=folder / "template")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def memory(targets: dict[str, Target], settle: float = 10.0) -> dict[str, dict[str, int]]:
    """Each server's proportional set size (all its processes) and process count, once the
    count holds still for a second (a worker pool forks after the web answers), at most
    `settle` seconds."""

    def sample() -> dict[str, dict[str, int]]:
        return {
            setup: dict(
                zip(("pss_bytes", "processes"), procs.group_pss(target.pids()), strict=True)
            )
            for setup, target in targets.items()
        }

    deadline, now = time.monotonic() + settle, sample()
    while time.monotonic() < deadline:
        time.sleep(1)
        before, now = now, sample()
        if all(now[s]["processes"] == before[s]["processes"] for s in now):
            break
    return now


def run(options: Options) -> dict[str, Any]:
    """The whole ladder; the figures, plans, skips and the processes left (none, normally)."""
    procs.raise_fd_limit()
    started, load_before, since = time.time(), os.getloadavg(), time.monotonic()
    prepared = Prepared()
    with scratch(options.out) as ctx:
        try:
            prepare(ctx, options, prepared)
            idle = memory(prepared.targets)
            figures = measure(options, prepared)
            after = memory(prepared.targets, settle=0)
            _say("Measured", since)
        finally:
            pids = stop(list(prepared.targets.values()))
            _say("Every server stopped", since)
        left = _leftovers(pids)
    return {
        "started": started,
        "finished": time.time(),
        "load_average": {"start": load_before, "end": os.getloadavg()},
        "cases": figures,
        "skipped": prepared.skipped,
        "plans": prepared.plans,
        "memory": {"idle": idle, "after": after},
        "processes_started": sorted(pids),
        "processes_left": left,
        "notes": ctx.notes,
    }
