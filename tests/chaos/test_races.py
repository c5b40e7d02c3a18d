"""Races against a real server (gunicorn, 2 processes x 4 threads): concurrent `PATCH`es
with one `If-Match`, and todos created in a list while it is deleted."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from tests.chaos.conftest import ApiServer, Http
from tests.chaos.figures import bounded, report
from todoscale.extensions import db
from todoscale.models import Todo, TodoList

CONTENDERS = 3  # writers per race, all holding the same ETag
GROUPS = 4  # races run at once (CONTENDERS threads each)


class Race:
    """One race's outcome: each contender's (status, title written), then the final todo."""

    def __init__(self) -> None:
        self.todo: dict[str, Any] = {}
        self.etag = ""
        self.answers: list[tuple[int, str]] = []
        self.final: dict[str, Any] = {}
        self.lock = threading.Lock()


def _contender(
    seat: int,
    conn: Http,
    races: list[Race],
    start: threading.Barrier,
    list_id: str,
    failures: list[str],
) -> None:
    """Run this seat's races; a failure is recorded and breaks the group's barrier at once,
    so the test names what went wrong instead of a contender waiting out the barrier."""
    try:
        _races(seat, conn, races, start, list_id)
    except threading.BrokenBarrierError:
        pass  # another seat of this group failed and said why
    except Exception as exc:  # noqa: BLE001 - reported by the test
        failures.append(f"seat {seat}: {type(exc).__name__}: {exc}")
        start.abort()


def _races(
    seat: int, conn: Http, races: list[Race], start: threading.Barrier, list_id: str
) -> None:
    for number, race in enumerate(races):
        if seat == 0:
            made = conn.request("POST", "/api/v1/todos", {"title": "start", "list_id": list_id})
            assert made.status == 201, (made.status, made.body)
            race.todo, race.etag = made.body, made.headers["etag"]
        start.wait(timeout=60)  # the todo exists: everyone writes at once
        title = f"race {number} seat {seat}"
        answer = conn.request(
            "PATCH", race.todo["url"], {"title": title}, headers={"If-Match": race.etag}
        )
        with race.lock:
            race.answers.append((answer.status, title))
        start.wait(timeout=60)  # every write answered: read what stuck
        if seat == 0:
            race.final = conn.request("GET", race.todo["url"]).body


def _lost(race: Race) -> int:
    """Updates lost in one race: 200s beyond the single winner, or a winner not stored."""
    winners = [title for status, title in race.answers if status == 200]
    if len(winners) != 1:
        return max(len(winners) - 1, 1)
    final_ok = race.final.get("title") == winners[0] and race.final.get("version") == 2
    return 0 if final_ok else 1


def test_concurrent_patches_with_one_if_match_lose_no_update(api_server: ApiServer) -> None:
    count = bounded(fast=100, full=10_000)
    alice = api_server.register("alice")
    bob = api_server.register("bob")
    owner = api_server.http(alice)
    shared = owner.request("POST", "/api/v1/lists", {"name": "Races"}).body
    assert (
        owner.request("POST", f"/api/v1/lists/{shared['id']}/members", {"username": "bob"}).status
        == 201
    )
    races = [Race() for _ in range(count)]
    threads = []
    failures: list[str] = []
    started = time.monotonic()
    for group in range(GROUPS):
        mine = races[group::GROUPS]
        barrier = threading.Barrier(CONTENDERS)
        for seat in range(CONTENDERS):
            conn = api_server.http(alice if seat != 1 else bob)  # the owner and a member race
            seated = (seat, conn, mine, barrier, shared["id"], failures)
            threads.append(threading.Thread(target=_contender, args=seated))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    elapsed = time.monotonic() - started

    finished = [race for race in races if race.final]
    statuses = Counter(status for race in races for status, _ in race.answers)
    lost = sum(_lost(race) for race in finished)
    other = sum(statuses.values()) - statuses[200] - statuses[412]
    report(
        "lost-updates",
        f"{lost}_lost_in_{len(finished)}_races_of_{CONTENDERS}_writers"
        f"(200:{statuses[200]},412:{statuses[412]},other:{other})"
        f"_in_{elapsed:.1f}s",
        f"0_in_{count}_races,_losers_412",
        held=lost == 0 and len(finished) == count and set(statuses) <= {200, 412},
    )
    assert not failures, (failures, api_server.log_tail())
    assert len(finished) == count, f"{count - len(finished)} races did not finish"
    assert set(statuses) <= {200, 412}, statuses
    assert statuses[200] == count
    assert statuses[412] == count * (CONTENDERS - 1)
    assert lost == 0


def _orphans(app: Flask) -> int:
    with app.app_context():
        known = select(TodoList.id)
        orphans = db.session.scalar(
            select(func.count()).select_from(Todo).where(Todo.list_id.not_in(known))
        )
        db.session.remove()
        return orphans or 0


def _writer(conn: Http, list_id: str, go: threading.Event, out: list[int]) -> None:
    go.wait(timeout=30)
    for number in range(4):
        answer = conn.request(
            "POST", "/api/v1/todos", {"title": f"late {number}", "list_id": list_id}
        )
        out.append(answer.status)


def test_todos_created_while_their_list_is_deleted_are_404_or_gone_with_it(
    app: Flask, api_server: ApiServer
) -> None:
    rounds = bounded(fast=25, full=500)
    alice = api_server.register("alice")
    bob = api_server.register("bob")
    owner, member = api_server.http(alice), api_server.http(bob)
    writers = [api_server.http(alice), api_server.http(bob)]
    statuses: Counter[int] = Counter()
    deleted: Counter[int] = Counter()
    survivors = 0
    for number in range(rounds):
        made = owner.request("POST", "/api/v1/lists", {"name": f"doomed {number}"}).body
        owner.request("POST", f"/api/v1/lists/{made['id']}/members", {"username": "bob"})
        go = threading.Event()
        answers: list[list[int]] = [[], []]
        threads = [
            threading.Thread(target=_writer, args=(conn, made["id"], go, out))
            for conn, out in zip(writers, answers, strict=True)
        ]
        for thread in threads:
            thread.start()
        go.set()
        time.sleep(0.002 * (number % 5))  # the delete lands at varying points of the writes
        deleted[owner.request("DELETE", made["url"]).status] += 1
        for thread in threads:
            thread.join(timeout=60)
        statuses.update(status for out in answers for status in out)
        survivors += member.request("GET", f"/api/v1/todos?list_id={made['id']}").status != 404
    orphans = _orphans(app)
    errors = sum(n for status, n in statuses.items() if status >= 500)
    report(
        "create-while-list-deleted",
        f"{errors}_x_5xx,{orphans}_orphans_in_{rounds}_rounds(201:{statuses[201]},404:{statuses[404]})",
        "0_x_5xx,0_orphans,only_201_or_404",
        held=errors == 0 and orphans == 0 and set(statuses) <= {201, 404},
    )
    assert deleted == {204: rounds}
    assert set(statuses) <= {201, 404}, statuses
    assert orphans == 0
    assert survivors == 0  # a deleted list is 404 afterwards, whatever was written into it
