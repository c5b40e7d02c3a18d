"""services/crypto.py and models/crypto.py: todo notes encrypted at rest, rotated in batches."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select, update

from todoscale import create_app
from todoscale.config import ConfigurationError
from todoscale.extensions import db
from todoscale.models import Todo
from todoscale.models.crypto import PREFIX, NotesUnreadable
from todoscale.services import crypto, jobs, todos, transfer
from todoscale.services.accounts import register_user
from todoscale.services.lists import default_list_id

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
SECRET = "door code 4711, ✓ ünïcode"


@pytest.fixture
def instance(make_app: Callable[..., Flask]) -> Callable[..., Flask]:
    """Apps on one database (a fresh SQLite file), each with the keys it is given."""
    first: list[Flask] = []

    def make(*keys: str) -> Flask:
        shared = (
            {"SQLALCHEMY_DATABASE_URI": first[0].config["SQLALCHEMY_DATABASE_URI"]} if first else {}
        )
        app = make_app(ENCRYPTION_KEYS=list(keys), **shared)
        if not first:
            first.append(app)
            with app.app_context():
                upgrade()
        return app

    return make


def _stored(app: Flask) -> list[str]:
    """The stored notes, in the order `_add` wrote them (by title: ids made within one
    millisecond sort at random)."""
    with app.app_context():
        return list(db.session.scalars(select(crypto.stored_notes).order_by(Todo.title)))


def _add(app: Flask, *notes: str) -> list[str]:
    with app.app_context():
        user = db.session.scalar(select(todos.User)) or register_user(
            "olive", "olive@example.com", "long enough pw"
        )
        return [
            todos.create_todo(user, title=f"t{n}", notes=text).id for n, text in enumerate(notes)
        ]


def test_notes_are_stored_sealed_and_read_in_clear(instance):
    app = instance(NEW)
    [todo_id] = _add(app, SECRET)
    [stored] = _stored(app)
    assert stored.startswith(PREFIX) and "4711" not in stored
    with app.app_context():
        user = db.session.scalar(select(todos.User))
        assert todos.get_todo(user, todo_id).notes == SECRET
        assert todos.list_todos(user).items[0].notes == SECRET
        assert db.session.get(Todo, todo_id).notes == SECRET
        assert crypto.encryption_enabled()


def test_without_keys_notes_are_stored_as_they_are(instance):
    app = instance()
    _add(app, SECRET, "")
    assert _stored(app) == [SECRET, ""]
    with app.app_context():
        assert not crypto.encryption_enabled()


def test_each_seal_differs_and_empty_notes_stay_empty(instance):
    app = instance(NEW)
    _add(app, SECRET, SECRET, "")
    first, second, empty = _stored(app)
    assert first != second and empty == ""


def test_exports_hold_the_notes_in_clear_and_imports_store_them_sealed(instance):
    app = instance(NEW)
    _add(app, SECRET)
    with app.app_context():
        user = db.session.scalar(select(todos.User))
        [row] = transfer.export_rows(user.id)
        assert row["notes"] == SECRET
        data = transfer.render([{**row, "title": "imported"}], "json")
        job = jobs.create_import(user, list_id=default_list_id(user), filename="x.json", data=data)
        jobs.run_job(job.id, worker_name="test")
        imported = db.session.scalars(select(Todo).where(Todo.title == "imported")).one()
        assert imported.notes == SECRET
        export = jobs.create_export(user, fmt="json")
        jobs.run_job(export.id, worker_name="test")
        content, _, _ = jobs.job_result(user, export.id)
    assert [todo["notes"] for todo in json.loads(content)["todos"]] == [SECRET, SECRET]
    assert all(stored.startswith(PREFIX) for stored in _stored(app))


def test_rotation_seals_old_and_plain_notes_with_the_first_key_in_batches(instance):
    plain = _add(instance(), "written before encryption")
    _add(instance(OLD), SECRET, SECRET, "", SECRET)
    rotating = instance(NEW, OLD)
    with rotating.app_context():
        assert crypto.rotate_notes(batch_size=2) == 4
        assert crypto.rotate_notes(batch_size=2) == 0, "notes sealed with the first key stay"
    only_new = instance(NEW)
    with only_new.app_context():
        notes = [db.session.get(Todo, todo_id).notes for todo_id in plain]
        assert notes == ["written before encryption"]
        assert sorted(t.notes for t in db.session.scalars(select(Todo))) == sorted(
            ["", "written before encryption", SECRET, SECRET, SECRET]
        )


def test_rotation_runs_while_the_service_reads(instance):
    _add(instance(OLD), *[f"{SECRET} {n}" for n in range(40)])
    app = instance(NEW, OLD)
    seen: list[Any] = []

    def read() -> None:
        with app.app_context():
            user = db.session.scalar(select(todos.User))
            for _ in range(30):
                rows = todos.list_todos(user, limit=40).items
                seen.append(sorted(row.notes for row in rows))
                db.session.rollback()

    reader = threading.Thread(target=read)
    reader.start()
    with app.app_context():
        assert crypto.rotate_notes(batch_size=3) == 40
    reader.join(timeout=60)
    expected = sorted(f"{SECRET} {n}" for n in range(40))
    assert seen and all(notes == expected for notes in seen)


def test_a_note_sealed_with_a_key_no_longer_configured_is_a_clear_error(instance):
    [todo_id] = _add(instance(OLD), SECRET)
    for app in (instance(NEW), instance()):
        with app.app_context(), pytest.raises(NotesUnreadable, match="TODOSCALE_ENCRYPTION_KEYS"):
            db.session.get(Todo, todo_id).notes  # noqa: B018 (reading is the test)


def test_rotation_without_keys_is_refused(instance):
    with instance().app_context(), pytest.raises(ValueError, match="TODOSCALE_ENCRYPTION_KEYS"):
        crypto.rotate_notes()


def test_a_malformed_key_stops_the_start_with_how_to_make_one(tmp_path):
    with pytest.raises(ConfigurationError, match=r"Fernet\.generate_key"):
        create_app(
            {
                "ENV_NAME": "testing",
                "INSTANCE_PATH": str(tmp_path),
                "ENCRYPTION_KEYS": ["not-a-key"],
            }
        )


def test_a_tampered_note_is_refused_not_read(instance):
    app = instance(NEW)
    [todo_id] = _add(app, SECRET)
    [stored] = _stored(app)
    tampered = stored[:-8] + ("A" if stored[-8] != "A" else "B") + stored[-7:]
    with app.app_context():
        db.session.execute(
            update(Todo).where(Todo.id == todo_id).values({crypto.stored_notes: tampered})
        )
        db.session.commit()
        with pytest.raises(NotesUnreadable):
            db.session.get(Todo, todo_id).notes  # noqa: B018 (reading is the test)
