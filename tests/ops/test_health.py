"""/healthz and /readyz."""

from __future__ import annotations

import logging

UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"


def test_healthz_is_200_while_the_process_serves(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}


def test_healthz_needs_no_credentials_and_no_database(make_app):
    app = make_app(SQLALCHEMY_DATABASE_URI=UNREACHABLE)

    assert app.test_client().get("/healthz").status_code == 200


def test_readyz_is_200_when_the_database_answers(app, client):
    response = client.get("/readyz")

    # Redis is checked too when the run gives one (TODOSCALE_TEST_REDIS_URL).
    checks = {"database": "ok"} | ({"redis": "ok"} if app.config["REDIS_URL"] else {})
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": checks}


def test_readyz_is_503_naming_the_database_when_it_is_unreachable(make_app, records_of):
    app = make_app(SQLALCHEMY_DATABASE_URI=UNREACHABLE)

    with records_of("todoscale.ops.health", logging.WARNING) as records:
        response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "checks": {"database": "unavailable"}}
    assert any("database unavailable" in record.getMessage() for record in records)


def test_readyz_stays_503_while_healthz_stays_200(make_app, client):
    broken = make_app(SQLALCHEMY_DATABASE_URI=UNREACHABLE).test_client()

    assert broken.get("/readyz").status_code == 503
    assert broken.get("/readyz").status_code == 503
    assert broken.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
