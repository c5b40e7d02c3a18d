"""services.jobs: queuing exports and imports, and running them (called directly, as a
worker would: `run_job` is what the task calls)."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import func, select, update

from tests.conftest import Recorder
from todoscale.exceptions import (
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    ValidationError,
)
from todoscale.extensions import db
from todoscale.models import Job, Todo, utcnow
from todoscale.services import import_files, jobs, lists, todos, transfer
from todoscale.services.accounts import register_user
from todoscale.signals import job_queued, job_updated, list_updated, todo_created


@pytest.fixture
def people(ctx):
    """An owner with a list shared with a member, and an outsider."""
    olive, mia, otto = (
        register_user(name, f"{name}@example.com", "long enough pw")
        for name in ("olive", "mia", "otto")
    )
    shared = lists.create_list(olive, "Shared").todo_list.id
    lists.share_list(olive, shared, username="mia")
    return {"olive": olive, "mia": mia, "otto": otto, "shared": shared}


def _csv(*rows: dict) -> bytes:
    blank = dict.fromkeys(transfer.FIELDS)
    return transfer.render([{**blank, "list": "L", "notes": "", **row} for row in rows], "csv")


def _count(list_id: str) -> int:
    return db.session.scalar(select(func.count()).select_from(Todo).where(Todo.list_id == list_id))


def _job(job_id: str) -> Job:
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job is not None
    return job


def test_create_export_queues_a_job_and_announces_it_after_commit(people):
    queued, updated = Recorder(), Recorder()
    committed = []

    def check_committed(sender, job_id):
        with db.engine.connect() as other:
            committed.append(other.scalar(select(Job.status).where(Job.id == job_id)))

    with (
        job_queued.connected_to(queued),
        job_queued.connected_to(check_committed),
        job_updated.connected_to(updated),
    ):
        job = jobs.create_export(people["mia"], fmt="csv", list_id=people["shared"])

    assert (job.kind, job.status, job.progress, job.user_id) == ("export", "queued", 0, job.user_id)
    assert queued.calls == [(jobs.create_export, {"job_id": job.id})]
    assert updated.calls == [(jobs.create_export, {"job": job})]
    assert committed == ["queued"]


def test_create_export_refuses_unknown_formats_and_invisible_lists(people):
    with pytest.raises(ValidationError) as refused:
        jobs.create_export(people["olive"], fmt="xml")
    assert refused.value.errors == {"format": ["must be 'csv' or 'json'"]}
    with pytest.raises(NotFoundError):
        jobs.create_export(people["otto"], fmt="csv", list_id=people["shared"])
    assert db.session.scalar(select(func.count()).select_from(Job)) == 0


def test_create_import_checks_the_list_the_shape_and_the_size(people):
    olive, otto, shared = people["olive"], people["otto"], people["shared"]
    good = _csv({"title": "x", "completed": False})
    with pytest.raises(NotFoundError):
        jobs.create_import(otto, list_id=shared, filename="a.csv", data=good)
    for data in (b"\x89PNG\r\n\x1a\n\x00\x00", b"name,age\nbob,3\n", b'["todos"]', b"{}"):
        with pytest.raises(ValidationError) as refused:
            jobs.create_import(olive, list_id=shared, filename="todos.csv", data=data)
        assert "not a todoscale export" in refused.value.detail
    too_big = good + b"x" * jobs.MAX_IMPORT_BYTES
    with pytest.raises(PayloadTooLargeError):
        jobs.create_import(olive, list_id=shared, filename="a.csv", data=too_big)

    job = jobs.create_import(people["mia"], list_id=shared, filename="a.json", data=good)

    assert (job.kind, job.status, job.payload) == ("import", "queued", good)
    assert orjson.loads(job.params)["format"] == "csv"  # told by the content, not the name


def test_an_import_over_the_row_cap_is_refused_whole_and_queues_nothing(people, app, monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_MAX_ROWS", 3)
    rows = [{"title": f"t{n}", "completed": False} for n in range(4)]

    with pytest.raises(ValidationError) as refused:
        jobs.create_import(
            people["olive"], list_id=people["shared"], filename="a", data=_csv(*rows)
        )

    assert "more than 3 rows" in refused.value.errors["file"][0]
    assert db.session.scalar(select(func.count()).select_from(Job)) == 0
    job = jobs.create_import(
        people["olive"], list_id=people["shared"], filename="a", data=_csv(*rows[:3])
    )
    assert orjson.loads(job.params)["rows"] == 3


def _traced_peak(action):
    """What `action()` returns, and the most memory Python allocated meanwhile."""
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_file_of_many_tiny_rows_is_read_as_a_stream_by_request_and_worker(people):
    # The audit's 10 MiB `{"todos": [0, 0, ...]}` took the web process to 1.2 GB and the
    # worker to 1.9 GB: every row held at once, then every row's error. A smaller file of
    # the same kind (tracing allocations is slow): both sides stay far below its rows' size.
    count = 96 * 1024
    data = b'{"todos":[' + b"0," * (count - 1) + b"0]}"

    job, queued = _traced_peak(
        lambda: jobs.create_import(
            people["olive"], list_id=people["shared"], filename="z", data=data
        )
    )
    _, ran = _traced_peak(lambda: jobs.run_job(job.id, worker_name="test"))

    assert queued < 8 * 1024 * 1024, f"the request allocated {queued / 2**20:.1f} MiB"
    assert ran < 8 * 1024 * 1024, f"the worker allocated {ran / 2**20:.1f} MiB"
    failed = _job(job.id)
    assert failed.status == "failed"
    assert failed.error.startswith("row 1: is not a row of an export")
    assert failed.error.endswith(f"; and {count - transfer.MAX_NAMED_ROWS} more rows")
    assert _count(people["shared"]) == 0


def test_export_runs_and_its_file_is_served_to_its_owner_only(people):
    olive, mia = people["olive"], people["mia"]
    todos.create_todo(olive, title="Milk", list_id=people["shared"], notes="semi")
    job = jobs.create_export(mia, fmt="json", list_id=people["shared"])
    with pytest.raises(ConflictError):
        jobs.job_result(mia, job.id)

    jobs.run_job(job.id, worker_name="test")

    data, content_type, filename = jobs.job_result(mia, job.id)
    assert content_type == "application/json"
    assert filename.startswith("Shared-") and filename.endswith(".json")
    [row] = orjson.loads(data)["todos"]
    assert (row["list"], row["title"], row["notes"], row["completed"]) == (
        "Shared",
        "Milk",
        "semi",
        False,
    )
    assert _job(job.id).status == "succeeded"
    with pytest.raises(NotFoundError):
        jobs.job_result(olive, job.id)
    with pytest.raises(NotFoundError):
        jobs.get_job(olive, job.id)


def test_an_export_without_a_list_covers_every_list_the_user_sees(people):
    olive, mia = people["olive"], people["mia"]
    todos.create_todo(olive, title="In shared", list_id=people["shared"])
    todos.create_todo(mia, title="In inbox")
    todos.create_todo(people["otto"], title="Not mine")
    job = jobs.create_export(mia, fmt="csv")

    jobs.run_job(job.id, worker_name="test")

    _fmt, rows = import_files.read_rows(jobs.job_result(mia, job.id)[0])
    assert sorted((row["list"], row["title"]) for row in rows) == [
        ("Inbox", "In inbox"),
        ("Shared", "In shared"),
    ]


def test_import_inserts_every_row_in_one_go_and_announces_the_list_once(people):
    shared = people["shared"]
    data = _csv(
        {"title": "  one ", "completed": True, "completed_at": "2026-01-02T03:04:05Z"},
        {"title": "two", "completed": False, "due_at": "2026-12-24T09:00:00+01:00"},
    )
    job = jobs.create_import(people["mia"], list_id=shared, filename="a.csv", data=data)
    created, list_changes = Recorder(), Recorder()
    progress: list[tuple[str, int]] = []

    def record(sender, job):  # the job object is live: note what it said at the time
        progress.append((job.status, job.progress))

    with (
        todo_created.connected_to(created),
        list_updated.connected_to(list_changes),
        job_updated.connected_to(record),
    ):
        jobs.run_job(job.id, worker_name="test")

    stored = {todo.title: todo for todo in db.session.scalars(select(Todo))}
    assert set(stored) == {"one", "two"}
    assert stored["one"].completed and stored["one"].completed_at.isoformat() == (
        "2026-01-02T03:04:05+00:00"
    )
    assert stored["two"].due_at.isoformat() == "2026-12-24T08:00:00+00:00"
    assert {todo.list_id for todo in stored.values()} == {shared}
    assert {todo.creator_id for todo in stored.values()} == {people["mia"].id}
    assert created.calls == []
    assert [kwargs["todo_list"].id for _, kwargs in list_changes.calls] == [shared]
    assert progress[0] == ("running", 0)
    assert progress[-1] == ("succeeded", 100)
    assert all(status == "running" for status, _ in progress[1:-1])
    assert _job(job.id).progress == 100
    assert _job(job.id).payload is None


def test_import_with_bad_rows_inserts_nothing_and_names_every_bad_row(people):
    rows = [{"title": f"row {n}", "completed": False} for n in range(1, 9)]
    rows[2]["title"] = " "
    rows[6]["due_at"] = "tomorrow"
    rows[7]["title"] = "x" * 501
    job = jobs.create_import(
        people["olive"], list_id=people["shared"], filename="a.csv", data=_csv(*rows)
    )

    jobs.run_job(job.id, worker_name="test")

    failed = _job(job.id)
    assert failed.status == "failed"
    assert failed.error == (
        "row 3: title must not be empty; "
        "row 7: due_at is not an RFC 3339 time with a zone, e.g. 2026-11-22T08:15:00Z; "
        "row 8: title must be at most 500 characters"
    )
    assert _count(people["shared"]) == 0
    with pytest.raises(NotFoundError):  # imports have no file, failed or not
        jobs.job_result(people["olive"], job.id)


def test_a_failed_export_answers_conflict_with_its_error(people):
    job = jobs.create_export(people["mia"], fmt="csv", list_id=people["shared"])
    lists.remove_member(people["olive"], people["shared"], username="mia")

    jobs.run_job(job.id, worker_name="test")

    with pytest.raises(ConflictError, match="no longer a member"):
        jobs.job_result(people["mia"], job.id)


def test_running_a_job_twice_changes_nothing_more_than_once(people):
    data = _csv(*({"title": f"t{n}", "completed": False} for n in range(25)))
    job = jobs.create_import(people["olive"], list_id=people["shared"], filename="a", data=data)
    jobs.run_job(job.id, worker_name="first")
    after_once = (_count(people["shared"]), _job(job.id).attempts, _job(job.id).finished_at)
    updates = Recorder()

    with job_updated.connected_to(updates):
        jobs.run_job(job.id, worker_name="second")

    assert (_count(people["shared"]), _job(job.id).attempts, _job(job.id).finished_at) == (
        after_once
    )
    assert after_once[:2] == (25, 1)
    assert updates.calls == []


def _set(job_id: str, **values) -> None:
    db.session.execute(update(Job).where(Job.id == job_id).values(**values))
    db.session.commit()


def test_a_running_job_is_left_alone_while_its_lease_lasts_and_taken_over_after(people):
    data = _csv({"title": "once", "completed": False})
    job = jobs.create_import(people["olive"], list_id=people["shared"], filename="a", data=data)
    # As a worker killed mid-job leaves it: claimed, nothing committed.
    _set(job.id, status="running", attempts=1, lease_until=utcnow() + timedelta(minutes=1))

    jobs.run_job(job.id, worker_name="early")
    assert (_job(job.id).status, _count(people["shared"])) == ("running", 0)

    _set(job.id, lease_until=utcnow() - timedelta(seconds=1))
    jobs.run_job(job.id, worker_name="late")

    assert (_job(job.id).status, _job(job.id).attempts) == ("succeeded", 2)
    assert _count(people["shared"]) == 1


def test_the_sweep_resends_stalled_jobs_once_per_lease(people, app):
    olive = people["olive"]
    fresh = jobs.create_export(olive, fmt="csv")
    old = jobs.create_export(olive, fmt="csv")
    killed = jobs.create_export(olive, fmt="csv")
    done = jobs.create_export(olive, fmt="csv")
    now = utcnow()
    long_ago = now - timedelta(seconds=app.config["JOB_SWEEP_SECONDS"] + 1)
    _set(old.id, created_at=long_ago)
    _set(killed.id, status="running", attempts=1, lease_until=now - timedelta(seconds=1))
    _set(done.id, status="succeeded", created_at=long_ago)
    queued = Recorder()

    with job_queued.connected_to(queued):
        assert jobs.requeue_stalled_jobs(now) == 2
        assert jobs.requeue_stalled_jobs(now) == 0  # the broker has a lease to deliver them

    assert sorted(kwargs["job_id"] for _, kwargs in queued.calls) == sorted([old.id, killed.id])
    assert _job(killed.id).status == "queued"
    assert _job(fresh.id).status == "queued"
    later = now + timedelta(seconds=app.config["JOB_LEASE_SECONDS"] + 1)
    assert jobs.requeue_stalled_jobs(later) == 3  # still not run: sent again, fresh too now


def test_an_unexpected_error_requeues_the_job_until_the_last_attempt_fails_it(people):
    job = jobs.create_export(people["olive"], fmt="csv")
    _set(job.id, params="{broken")

    with pytest.raises(ValueError):
        jobs.run_job(job.id, worker_name="test")
    assert (_job(job.id).status, _job(job.id).attempts) == ("queued", 1)

    _set(job.id, attempts=jobs.MAX_ATTEMPTS - 1)
    jobs.run_job(job.id, worker_name="test")

    failed = _job(job.id)
    assert (failed.status, failed.attempts) == ("failed", jobs.MAX_ATTEMPTS)
    assert failed.error.startswith(f"Failed after {jobs.MAX_ATTEMPTS} attempts: JSONDecodeError")


def test_a_given_row_cap_and_lease_are_the_ones_used(people):
    rows = [{"title": f"t{n}", "completed": False} for n in range(3)]
    olive, shared = people["olive"], people["shared"]

    with pytest.raises(ValidationError) as refused:
        jobs.create_import(olive, list_id=shared, filename="a", data=_csv(*rows), max_rows=2)
    assert "more than 2 rows" in refused.value.errors["file"][0]

    job = jobs.create_export(olive, fmt="csv")
    lease = timedelta(hours=3)
    seen = []
    with job_updated.connected_to(lambda sender, job: seen.append(job.lease_until)):
        jobs.run_job(job.id, worker_name="test", lease=lease)
    claimed = _job(job.id)
    assert claimed.status == "succeeded"
    assert seen[0] is not None and seen[0] - claimed.started_at == lease
