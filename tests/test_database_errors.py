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
