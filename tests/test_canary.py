"""Canary: proves nothing leaks between tests. The two tests run in this order."""

from __future__ import annotations

from sqlalchemy import func, select

from todoscale.extensions import db


def _rows(app) -> dict[str, int]:
    with app.app_context():
        return {
            table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in db.metadata.sorted_tables
        }


def test_canary_writes_rows_in_every_table(app, alice, bob):
    shared = alice.post("/api/v1/lists", json={"name": "Leaky"}).get_json()["id"]
    alice.post(f"/api/v1/lists/{shared}/members", json={"username": "bob"})
    alice.add_todo("left behind?", list_id=shared)

    rows = _rows(app)
    assert all(rows[name] > 0 for name in ("users", "api_tokens", "lists", "memberships", "todos"))


def test_canary_finds_every_table_empty_at_its_start(app):
    assert set(_rows(app).values()) == {0}
