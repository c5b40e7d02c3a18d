"""The mixed-traffic load driver of issue 13: locust as a library (`Environment`, `FastHttpUser`),
in a process of its own (locust patches everything with gevent on import), against a real
server on loopback.

Each virtual user is one account of its own (a bearer token) and touches only its own todos, so
it knows exactly what the database must hold: 70 % reads (the newest page, one todo), 20 %
creates and edits (each edit with `If-Match`), 10 % deletes. Every answer is checked (status and
body), every acknowledged write recorded (the todo's id and the states it may end in), and the
test counts lost writes against the database afterwards.

The driver runs a plan of steps, each an offered rate (requests per second, each user pacing
itself to its share) for some seconds. In a search it stops at the first bad step:
an error, p99 over the limit, or less than 90 % of the offered rate delivered (then the server
answered too slowly to be offered it; a closed loop cannot offer more than it gets back).

    python -m tests.chaos.load PLAN.json RESULT.json
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

USERS = 200
READS = ("page", "todo")
WRITES = ("create", "edit", "delete")
# Task weights out of 100: reads 70, creates and edits 20, deletes 10.
WEIGHTS = {"page": 35, "todo": 35, "create": 10, "edit": 10, "delete": 10}
REFUSALS = (429, 503)  # an honest "not now", when it carries Retry-After
DELIVERED = 0.9  # a step delivering less of its offered rate was not offered it


@dataclass
class Step:
    """One step of a plan: `rate` requests per second offered for `seconds`."""

    rate: float
    seconds: float
    label: str = ""
    timeline: bool = False  # keep every request's start, end, outcome and status
    started_file: str = ""  # touched when the step begins (a test's fault keys off it)


@dataclass
class Tally:
    """What one step saw: statuses per kind, failures, latencies of reads and writes."""

    label: str
    rate: float
    seconds: float
    statuses: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # why, for each failed request
    refusals: int = 0  # 429 or 503 with Retry-After
    bare_refusals: int = 0  # 429 or 503 without it
    socket_errors: int = 0
    server_errors: int = 0  # 5xx
    errors_500: int = 0
    reads: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)
    timeline: list[tuple[float, float, bool, int]] | None = None

    def summary(self) -> dict[str, Any]:
        """The step's figures, as the result file holds them."""
        done = len(self.reads) + len(self.writes)
        return {
            "label": self.label,
            "rate": self.rate,
            "seconds": self.seconds,
            "requests": done,
            "achieved": done / self.seconds if self.seconds else 0.0,
            "statuses": dict(self.statuses),
            "failures": dict(self.failures),
            "failed": sum(self.failures.values()),
            "refusals": self.refusals,
            "bare_refusals": self.bare_refusals,
            "socket_errors": self.socket_errors,
            "server_errors": self.server_errors,
            "errors_500": self.errors_500,
            "p99_read": percentile(self.reads, 0.99),
            "p99_write": percentile(self.writes, 0.99),
            "p99": percentile(self.reads + self.writes, 0.99),
            "timeline": self.timeline,
        }


def totals(result: dict[str, Any]) -> dict[str, Any]:
    """The counts of a whole run: its warm-up, its steps and the drain of its last requests."""
    phases = [result["warmup"], *result["steps"], result["drain"]]
    summed: dict[str, Any] = {"statuses": Counter(), "failures": Counter()}
    for phase in phases:
        summed["statuses"].update(phase["statuses"])
        summed["failures"].update(phase["failures"])
        for key in ("failed", "refusals", "bare_refusals", "socket_errors", "errors_500"):
            summed[key] = summed.get(key, 0) + phase[key]
    summed["5xx"] = sum(
        n for key, n in summed["statuses"].items() if key.split(":")[1].startswith("5")
    )
    return summed


def percentile(values: list[float], share: float) -> float:
    """The `share` percentile of `values` (nearest rank), 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * share + 0.999999) - 1))]


def body_of(response: Any) -> dict[str, Any]:
    """The response's JSON object, or {} when it is none."""
    try:
        decoded = response.json()
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def good_step(step: dict[str, Any], p99_limit: float) -> bool:
    """A step of the capacity search held: no error, p99 within the limit, rate delivered."""
    return (
        step["failed"] == 0
        and step["p99"] <= p99_limit
        and step["achieved"] >= DELIVERED * step["rate"]
    )


# The driver's side: runs under `python -m tests.chaos.load`, in a process locust patched.


class Book:
    """Every todo a user acknowledged writing: the titles it may hold now (more than one
    while a write's outcome is unknown) and whether it must, may or must not exist."""

    def __init__(self) -> None:
        self.todos: dict[str, dict[str, Any]] = {}

    def known(self, todo_id: str, title: str) -> None:
        self.todos[todo_id] = {"titles": [title], "exists": "yes"}

    def unknown_edit(self, todo_id: str, title: str) -> None:
        self.todos[todo_id]["titles"].append(title)

    def deleted(self, todo_id: str, *, certain: bool) -> None:
        self.todos[todo_id]["exists"] = "no" if certain else "maybe"


def _run_driver(plan: dict[str, Any]) -> dict[str, Any]:  # noqa: C901 - one closure set
    import gevent
    from locust import FastHttpUser, task
    from locust.contrib.fasthttp import FAILURE_EXCEPTIONS
    from locust.env import Environment

    tokens = iter(plan["tokens"])
    book = Book()
    started = time.monotonic()
    tally = first = Tally("warm-up", plan["steps"][0]["rate"], plan.get("warmup", 0.5))
    in_flight, warm, epoch, phase = [0], [0], [0.0], [0]
    oddities: list[dict[str, Any]] = []
    serial = itertools.count()

    def record(kind: str, began: float, status: int, problem: str | None) -> None:
        ended = time.monotonic()
        (tally.reads if kind in READS else tally.writes).append(ended - began)
        tally.statuses[f"{kind}:{status}"] += 1
        if status == 0:
            tally.socket_errors += 1
        elif status >= 500 and status != 503:
            tally.server_errors += 1
            tally.errors_500 += status == 500
        if problem:
            tally.failures[problem] += 1
        if tally.timeline is not None:
            tally.timeline.append((began - started, ended - started, problem is None, status))

    def oddity(kind: str, todo_id: str, expected: str, response: Any, body: Any) -> None:
        """Keep the first few answers that contradict the book, whole, for the report."""
        if len(oddities) < 20:
            oddities.append({"kind": kind, "id": todo_id, "expected": expected,
                             "status": response.status_code, "body": body,
                             "headers": dict(response.headers or {})})  # fmt: skip

    def cut_short(response: Any) -> bool:
        """Whether the body ended before its Content-Length (when compressed, whether what
        came is no whole JSON document: the client hands over the decoded body)."""
        headers = response.headers or {}
        length = headers.get("Content-Length")
        try:
            content = response.content or b""
        except FAILURE_EXCEPTIONS:
            return True
        if not length or not int(length):
            return False
        if not headers.get("Content-Encoding"):
            return len(content) != int(length)
        try:
            json.loads(content)
        except ValueError:
            return True
        return False

    def refusal(response: Any) -> str | None:
        """None for an honest refusal (429/503 problem+json with Retry-After), else why it
        is not one."""
        if "problem+json" not in (response.headers.get("Content-Type") or ""):
            return f"{response.status_code}_not_problem_json"
        if response.headers.get("Retry-After"):
            tally.refusals += 1
            return None
        tally.bare_refusals += 1
        return f"{response.status_code}_without_retry_after"

    users = len(plan["tokens"])
    rate = [plan["steps"][0]["rate"]]  # the offered rate now, set by each step
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    chance, seats = random.Random(13), itertools.count()

    class Mixed(FastHttpUser):
        """One account's traffic, paced so that all users together offer `rate`: each acts
        once per `users / rate` seconds, from a phase of its own (no thundering start), and
        a change of rate applies at once (a user never sleeps past a quarter second)."""

        host = plan["url"]
        network_timeout = connection_timeout = 30.0

        def on_start(self) -> None:
            self.token = next(tokens)
            self.headers = {"Authorization": f"Bearer {self.token}"}
            self.mine: dict[str, tuple[str, str]] = {}  # id -> (title, etag), outcome known
            self.paced = users / rate[0]
            self.seat = next(seats)
            self.due, self.phase = 0.0, 0
            try:
                self.page()  # its connection opened, its token known to the server, its todos
            finally:
                warm[0] += 1

        def repace(self, now: float) -> None:
            """A new rate: the wait left stretches or shrinks with the interval."""
            if not rate[0] or not epoch[0]:
                return  # warming up, pausing or draining: no new request
            interval = users / rate[0]
            if self.phase != phase[0]:
                # Phases spread evenly from one epoch (the warm-up's end, a pause's end): any
                # window sees its share of requests, and no pause ends in a burst of them all.
                self.due, self.paced = epoch[0] + interval * self.seat / users, interval
                self.phase = phase[0]
            if interval != self.paced:
                self.due = now + max(self.due - now, 0.0) * interval / self.paced
                self.paced = interval

        def wait_time(self) -> float:
            now = time.monotonic()
            self.repace(now)
            return min(max(self.due - now, 0.0), 0.25) if self.due else 0.05

        @task
        def act(self) -> None:
            """The next request when it is due: its kind drawn by WEIGHTS."""
            now = time.monotonic()
            self.repace(now)
            if not self.due or now < self.due or not rate[0]:
                return
            # Keep the phase; a user more than an interval late (a slow answer) starts anew.
            self.due = self.due + self.paced if now - self.due < self.paced else now + self.paced
            getattr(self, chance.choices(kinds, weights)[0])()

        def call(self, kind: str, method: str, path: str, body: Any = None,
                 headers: dict[str, str] | None = None) -> tuple[Any, int, str | None]:  # fmt: skip
            """Send one request; (response, status, the failure it was or None)."""
            sent = {**self.headers, **(headers or {})}
            in_flight[0] += 1
            try:
                with self.client.request(method, path, json=body, headers=sent, name=kind,
                                         catch_response=True) as response:  # fmt: skip
                    status = response.status_code or 0
                    problem = None
                    if status and cut_short(response):
                        # Headers, then the connection gone (the worker was killed between
                        # its writes): no answer, as a broken connection is none.
                        status, response.error = 0, ConnectionError("body cut short")
                    if status == 0:
                        problem = f"socket_error:{type(response.error).__name__}"
                    elif status in REFUSALS:
                        problem = refusal(response)
                    elif status >= 500:
                        problem = f"{status}"
                    if problem:
                        response.failure(problem)
                    else:
                        response.success()
            finally:
                in_flight[0] -= 1
            return response, status, problem

        def page(self) -> None:
            began = time.monotonic()
            response, status, problem = self.call("page", "GET", "/api/v1/todos?limit=10")
            if status == 200:
                items = body_of(response).get("items")
                if not isinstance(items, list) or len(items) > 10:
                    problem = "page:bad_body"
                else:
                    for item in items:  # learn the seeded todos as targets of edits
                        if item["id"] not in self.mine and item["id"] not in book.todos:
                            self.mine[item["id"]] = (item["title"], "")
            elif status not in REFUSALS and not problem:
                problem = f"page:{status}"
            record("page", began, status, problem)

        def todo(self) -> None:
            target = self.pick()
            if target is None:
                return self.page()
            todo_id, (title, _) = target
            began = time.monotonic()
            response, status, problem = self.call("todo", "GET", f"/api/v1/todos/{todo_id}")
            if status == 200:
                body = body_of(response)
                if body.get("id") != todo_id or body.get("title") != title:
                    problem = "todo:not_as_written"  # read-your-writes broken
                    oddity("todo", todo_id, title, response, body)
                else:
                    self.mine[todo_id] = (title, response.headers.get("ETag", ""))
            elif status not in REFUSALS and not problem:
                problem = f"todo:{status}"
            record("todo", began, status, problem)
            return None

        def create(self) -> None:
            title = f"load {next(serial)} {time.time_ns()}"
            began = time.monotonic()
            response, status, problem = self.call(
                "create", "POST", "/api/v1/todos", {"title": title, "notes": title}
            )
            if status == 201:
                body = body_of(response)
                if body.get("title") != title or not response.headers.get("ETag"):
                    problem = "create:bad_body"
                else:
                    book.known(body["id"], title)
                    self.mine[body["id"]] = (title, response.headers["ETag"])
            elif status not in REFUSALS and not problem:
                problem = f"create:{status}"
            record("create", began, status, problem)

        def edit(self) -> None:
            target = self.pick(with_etag=True)
            if target is None:
                return self.create()
            todo_id, (old, etag) = target
            title = f"load {next(serial)} {time.time_ns()}"
            if todo_id not in book.todos:
                book.known(todo_id, old)
            began = time.monotonic()
            response, status, problem = self.call(
                "edit", "PATCH", f"/api/v1/todos/{todo_id}",
                {"title": title, "notes": title}, {"If-Match": etag},
            )  # fmt: skip
            unknown = status == 0 or status >= 500
            if status == 200:
                body = body_of(response)
                if body.get("title") != title or not response.headers.get("ETag"):
                    problem = "edit:bad_body"
                    oddity("edit", todo_id, title, response, body)
                    unknown = True  # what it wrote is not known: booked as such below
                else:
                    book.known(todo_id, title)
                    self.mine[todo_id] = (title, response.headers["ETag"])
            elif status in REFUSALS and not problem:
                pass  # refused: nothing written, the todo stays as it was
            elif not problem:
                problem = f"edit:{status}"  # 412 or 404: nobody else writes this todo
            if unknown:
                book.unknown_edit(todo_id, title)  # it may have committed: leave it be
                del self.mine[todo_id]
            record("edit", began, status, problem)
            return None

        def delete(self) -> None:
            target = self.pick()
            if target is None:
                return self.create()
            todo_id, (title, _) = target
            if todo_id not in book.todos:
                book.known(todo_id, title)
            began = time.monotonic()
            _response, status, problem = self.call("delete", "DELETE", f"/api/v1/todos/{todo_id}")
            if status == 204:
                book.deleted(todo_id, certain=True)
                del self.mine[todo_id]
            elif status == 404:
                # DELETE is idempotent: the client library sends it again on a fresh
                # connection when the first one broke unanswered; the first one deleted it.
                book.deleted(todo_id, certain=True)
                del self.mine[todo_id]
                tally.statuses["delete:404_after_retry"] += 1
            elif status == 0 or status >= 500:
                book.deleted(todo_id, certain=False)
                del self.mine[todo_id]
            elif status not in REFUSALS and not problem:
                problem = f"delete:{status}"
            record("delete", began, status, problem)
            return None

        def pick(self, *, with_etag: bool = False) -> tuple[str, tuple[str, str]] | None:
            for todo_id, known in self.mine.items():
                if known[1] or not with_etag:
                    return todo_id, known
            return None

    env = Environment(user_classes=[Mixed])
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)  # over a second: no cold burst of 200 at once
    # The warm-up: every user's first request (its connection, its todos) answered.
    while warm[0] < users and time.monotonic() - started < Mixed.network_timeout:
        gevent.sleep(0.05)
    epoch[0], phase[0] = time.monotonic(), 1
    gevent.sleep(plan.get("warmup", 0.5))
    if plan.get("ready_file"):
        Path(plan["ready_file"]).touch()  # the test's faults may begin
    steps: list[dict[str, Any]] = []

    def run(step: Step) -> dict[str, Any]:
        nonlocal tally
        tally = Tally(step.label, step.rate, step.seconds, timeline=[] if step.timeline else None)
        began = time.monotonic()
        if step.started_file:
            Path(step.started_file).touch()
        if step.rate:
            rate[0] = step.rate
            stop = Path(plan["stop_file"]) if plan.get("stop_file") else None
            while time.monotonic() - began < step.seconds and not (stop and stop.exists()):
                gevent.sleep(min(0.1, step.seconds))
            step.seconds = time.monotonic() - began  # the test may have ended it early
            tally.seconds = step.seconds
        else:  # a pause: every answer in (the backlog of a step too fast), then a fresh start
            rate[0] = 0.0
            while in_flight[0] and time.monotonic() - began < step.seconds:
                gevent.sleep(0.05)
            epoch[0], phase[0] = time.monotonic(), phase[0] + 1
        steps.append({"started": began - started, **tally.summary()})
        return steps[-1]

    limit = plan.get("p99_limit", 1.0)
    for spec in plan["steps"]:
        if not good_step(run(Step(**spec)), limit) and plan.get("search"):
            break
    good = list(itertools.takewhile(lambda step: good_step(step, limit), steps))
    capacity = good[-1]["rate"] if good else 0.0
    for spec in plan.get("then", []) if capacity else []:
        factor = spec.pop("factor")
        run(Step(rate=factor * capacity, **spec))
    # Stop asking, let every request in flight finish (its outcome goes to the book), then
    # stop the users: a user killed mid-request would leave a write done but not booked.
    tally = Tally("drain", 0, 0.0)
    rate[0] = 0.0
    drained = time.monotonic()
    while in_flight[0] and time.monotonic() - drained < Mixed.network_timeout + 5:
        gevent.sleep(0.05)
    tally.seconds = time.monotonic() - drained
    runner.quit()
    cpu = os.times()
    return {
        "capacity": capacity,
        "steps": steps,
        "warmup": first.summary(),
        "drain": tally.summary(),
        "stuck": in_flight[0],
        "oddities": oddities,
        "todos": book.todos,
        "driver_cpu_seconds": cpu.user + cpu.system,
        "seconds": time.monotonic() - started,
        "clock": started,  # time.monotonic() (system-wide) at the run's start: 0 of its times
        "locust_requests": env.stats.total.num_requests,
        "locust_failures": env.stats.total.num_failures,
    }


# The test's side: seed the users, run the driver in its own process, check the database.


def seed_tokens(app: Any, prefix: str, count: int = USERS, todos: int = 10) -> list[str]:
    """`count` users (`todos` each, through the seeding service: one password hash for all)
    and a bearer token of each (the token service)."""
    from sqlalchemy import select

    from tests.chaos.conftest import PASSWORD
    from todoscale.extensions import db
    from todoscale.models import User
    from todoscale.services.accounts import issue_token
    from todoscale.services.seeding import seed

    with app.app_context():
        names = seed(users=count, todos=count * todos, password=PASSWORD, prefix=prefix)
        users = db.session.scalars(select(User).where(User.username.in_(names))).all()
        tokens = [issue_token(user)[0] for user in users]
        db.session.remove()
    return tokens


def launch(
    url: str, tokens: list[str], steps: list[Step], folder: Path, **options: Any
) -> tuple[subprocess.Popen[bytes], float]:
    """Start the plan in a driver process of its own (its output in `folder`/driver.log,
    its result in `folder`/result.json); the process and the plan's time bound, seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    plan_file, result_file = folder / "plan.json", folder / "result.json"
    plan = {"url": url, "tokens": tokens, "steps": [vars(step) for step in steps], **options}
    plan_file.write_text(json.dumps(plan))
    budget = (
        sum(step.seconds for step in steps)
        + sum(then["seconds"] for then in options.get("then", []))
        + 60
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    argv = [sys.executable, "-m", "tests.chaos.load", str(plan_file), str(result_file)]
    with (folder / "driver.log").open("w") as log:
        proc = subprocess.Popen(argv, cwd=Path(__file__).parents[2], env=env, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
    return proc, budget


def outcome(proc: subprocess.Popen[bytes], folder: Path) -> Any:
    """The result of a driver process that has ended (a failure, with its log, if it failed)."""
    assert proc.returncode == 0, (folder / "driver.log").read_text()[-3000:]
    return json.loads((folder / "result.json").read_text())


def drive(url: str, tokens: list[str], steps: list[Step], folder: Path, **options: Any) -> Any:
    """Run the plan in a driver process of its own (bounded by the plan's time); its result."""
    proc, budget = launch(url, tokens, steps, folder, **options)
    try:
        proc.wait(timeout=budget)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return outcome(proc, folder)


def search_capacity(
    url: str, tokens: list[str], folder: Path, *, start: float, factor: float, seconds: float,
    then: list[dict[str, Any]], p99_limit: float = 1.0,
) -> Any:  # fmt: skip
    """Step the offered rate up by `factor` until a step fails (the capacity is the last good
    step's rate), then run the `then` steps at their `factor` of the capacity; the result."""
    rates = [start * factor**n for n in range(40)]
    steps = [Step(rate, seconds, f"search {rate:.0f}/s") for rate in rates]
    return drive(url, tokens, steps, folder, search=True, p99_limit=p99_limit, then=then)


def stored(app: Any) -> dict[str, tuple[str, str]]:
    """Every todo in the database: id -> (title, notes)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, title, notes FROM todos"))
            return {row[0]: (row[1], row[2]) for row in rows}
    finally:
        engine.dispose()


def audit(app: Any, todos: dict[str, dict[str, Any]]) -> tuple[int, int, int]:
    """(lost, partial, acknowledged) of the driver's book against the database. Lost: an
    acknowledged write not there (a todo missing, or holding none of its possible titles,
    or present after an acknowledged delete). Partial: a row written by the driver whose
    title and notes (always written together) disagree."""
    rows = stored(app)
    lost = []
    for todo_id, state in todos.items():
        row = rows.get(todo_id)
        if state["exists"] == "no":
            missed = row is not None
        elif row is None:
            missed = state["exists"] == "yes"
        else:
            missed = row[0] not in state["titles"]
        if missed:
            lost.append((todo_id, state, row))
    if lost:
        print("lost acknowledged writes (id, the book's state, the row):", *lost[:20], sep="\n")
    partial = sum(
        1 for title, notes in rows.values() if title.startswith("load ") and title != notes
    )
    return len(lost), partial, len(todos)


def main(plan_file: Path, result_file: Path) -> int:
    """Run a plan; write its result."""
    import logging

    logging.getLogger("locust").setLevel(logging.WARNING)
    plan = json.loads(plan_file.read_text())
    result_file.write_text(json.dumps(_run_driver(plan)))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
