"""errors.py: a database that refuses (a full disk, a lock, a server gone) is never a 500."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import OperationalError


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("database or disk is full", 507),
        ("could not extend file base/1/2: No space left on device", 507),
        ("database is locked", 503),
        ("connection refused", 503),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/broken", "/broken"])
def test_a_database_error_is_a_problem_with_retry_after_not_a_500(make_app, message, status, path):
    app = make_app()

    def broken() -> str:
        raise OperationalError("INSERT ...", {}, sqlite3.OperationalError(message))

    app.add_url_rule(path, "broken", broken)

    response = app.test_client().get(path)

    assert response.status_code == status
    assert response.headers["Retry-After"] == "5"
    if path.startswith("/api/"):
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["status"] == status
    else:
        assert response.mimetype == "text/html"


def test_a_database_gone_when_the_session_closes_keeps_the_answer(make_app, monkeypatch):
    """PostgreSQL stopped under load (tests/chaos/test_postgres_stop.py): the ROLLBACK that
    closing the request's session sends failed on the terminated connection, in Flask's
    teardown, and the server answered 500 in place of the response the view had made."""
    from sqlalchemy import text

    from todoscale.extensions import db

    app = make_app()

    def reads() -> str:
        db.session.execute(text("SELECT 1"))  # a transaction begun, as every request's
        return "answered"

    app.add_url_rule("/reads", "reads", reads)
    assert app.test_client().get("/reads").status_code == 200  # the pool's connection made
    with app.app_context():
        dialect = db.engine.dialect

    def gone(_connection: object) -> None:
        raise sqlite3.OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(dialect, "do_rollback", gone)
    response = app.test_client().get("/reads")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "answered"
    monkeypatch.undo()
    assert app.test_client().get("/reads").status_code == 200  # the pool holds no broken one
