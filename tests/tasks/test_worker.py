"""Jobs through a real Celery worker process: round trips, refusals, a SIGKILL mid-import."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.api.test_jobs import post_import
from tests.conftest import Account
from tests.workers import wait_for
from todoscale.extensions import db
from todoscale.models import Job, Todo
from todoscale.services import transfer

COMPARED = ("title", "notes", "completed", "completed_at", "due_at", "created_at", "updated_at")


def _job(account: Account, job_id: str) -> dict[str, Any]:
    response = account.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200
    job: dict[str, Any] = response.get_json()
    return job


def _finished(account: Account, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The job once it succeeded or failed."""
    return wait_for(
        lambda: (job := _job(account, job_id))["status"] in ("succeeded", "failed") and job,
        timeout=timeout,
        message=f"job {job_id} did not finish",
    )


def _new_list(account: Account, name: str) -> str:
    response = account.post("/api/v1/lists", json={"name": name})
    assert response.status_code == 201
    list_id: str = response.get_json()["id"]
    return list_id


def _todos(account: Account, list_id: str) -> list[dict[str, Any]]:
    response = account.get(f"/api/v1/todos?list_id={list_id}&limit=100")
    items: list[dict[str, Any]] = response.get_json()["items"]
    return sorted(items, key=lambda todo: (todo["created_at"], todo["title"]))


def _import(account: Account, list_id: str, data: bytes, name: str = "todos.csv") -> str:
    response = post_import(account, list_id, data, name)
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["id"]
    return job_id


def _count(app: Flask, list_id: str) -> int:
    with app.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(Todo).where(Todo.list_id == list_id)
        )
        db.session.remove()
    return count or 0


def _job_row(app: Flask, job_id: str) -> tuple[str, int, int]:
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert job is not None
        state = (job.status, job.progress, job.attempts)
        db.session.remove()
    return state


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_then_import_round_trip_gives_equal_todos(start_worker, alice, fmt):
    source = _new_list(alice, "Groceries, weekly")
    alice.add_todo("Milk", list_id=source, notes='2 litres, "fresh"\nskimmed')
    alice.add_todo("Bread", list_id=source, due_at="2026-12-24T09:30:00.123456+02:00")
    done = alice.add_todo("Eggs ✓ 卵", list_id=source)
    assert alice.patch(f"/api/v1/todos/{done['id']}", json={"completed": True}).status_code == 200
    start_worker()

    export = alice.post("/api/v1/exports", json={"format": fmt, "list_id": source})
    assert export.status_code == 202
    exported = _finished(alice, export.get_json()["id"])
    assert exported["status"] == "succeeded", exported
    download = alice.get(exported["result_url"])
    assert download.status_code == 200
    target = _new_list(alice, "Copy")
    imported = _finished(alice, _import(alice, target, download.data, f"export.{fmt}"))

    assert imported["status"] == "succeeded", imported
    original, copy = _todos(alice, source), _todos(alice, target)
    assert len(copy) == 3
    assert [{k: t[k] for k in COMPARED} for t in copy] == [
        {k: t[k] for k in COMPARED} for t in original
    ]
    assert {t["id"] for t in copy}.isdisjoint(t["id"] for t in original)


def test_an_import_with_one_bad_row_imports_nothing_and_names_the_row(start_worker, alice, app):
    rows = [
        {"title": "fine", "completed": False},
        {"title": "   ", "completed": False},
        {"title": "also fine", "completed": True},
    ]
    target = _new_list(alice, "Target")
    start_worker()

    job = _finished(alice, _import(alice, target, transfer.render(_rows(rows), "csv")))

    assert job["status"] == "failed"
    assert job["error"] == "row 2: title must not be empty"
    assert _count(app, target) == 0


def test_an_import_of_a_time_past_year_9999_fails_once_naming_the_row(start_worker, alice, app):
    """Its OverflowError made the job retry six times; now the row check refuses it at once."""
    rows = [{"title": "fine"}, {"title": "late", "due_at": "9999-12-31T23:00:00-05:00"}]
    target = _new_list(alice, "Target")
    start_worker()

    job = _finished(alice, _import(alice, target, transfer.render(_rows(rows), "csv")))

    assert job["status"] == "failed"
    assert job["error"] == "row 2: due_at must be between 0001-01-02 and 9999-12-30 (UTC)"
    assert _job_row(app, job["id"])[2] == 1  # one attempt
    assert _count(app, target) == 0


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    blank = dict.fromkeys(transfer.FIELDS)
    return [{**blank, "list": "L", "notes": "", **row} for row in rows]


def test_sigkill_mid_import_leaves_exactly_every_row_after_recovery(start_worker, alice, app):
    # Large rows (9 MB in all) so the import runs long enough to be killed in the middle.
    note = "n" * 800
    rows = _rows([{"title": f"Todo {n}", "notes": note} for n in range(10_000)])
    data = transfer.render(rows, "csv")
    assert len(data) < 10 * 1024 * 1024
    target = _new_list(alice, "Big")
    worker = start_worker(lease_seconds=2)
    job_id = _import(alice, target, data)

    # Progress 90: every row is checked and the insert transaction begins; kill it there.
    wait_for(lambda: _job_row(app, job_id)[1] >= 90, timeout=30, interval=0.005)
    worker.kill()
    status, _, attempts = _job_row(app, job_id)
    assert status == "running", "the kill came after the commit: nothing was tested"
    assert attempts == 1
    assert _count(app, target) == 0

    start_worker(lease_seconds=2, sweep_seconds=0.5, beat=True)
    job = _finished(alice, job_id, timeout=30)

    assert job["status"] == "succeeded", job
    assert _count(app, target) == 10_000
    assert _job_row(app, job_id)[2] == 2


def test_a_job_queued_while_the_worker_is_down_runs_when_it_comes_back(start_worker, alice, app):
    alice.add_todo("Milk")
    worker = start_worker()
    worker.stop()
    assert not worker.running

    job_id = alice.post("/api/v1/exports", json={"format": "json"}).get_json()["id"]
    assert _job(alice, job_id)["status"] == "queued"
    start_worker()
    job = _finished(alice, job_id)

    assert job["status"] == "succeeded"
    assert alice.get(job["result_url"]).get_json()["todos"][0]["title"] == "Milk"
