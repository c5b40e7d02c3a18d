"""`GET /metrics`: who may read it (404 for everyone else), and what it shows."""

from __future__ import annotations

import pytest

from tests.admin.conftest import grant
from tests.conftest import Account
from tests.web.conftest import WebUser
from todoscale.ops.exposition import JOBS_EXTENSION

REMOTE = {"REMOTE_ADDR": "203.0.113.9"}


def test_loopback_clients_read_it_in_the_embedded_default(client):
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    assert b"todoscale_http_request_duration_seconds" in response.data


def test_anyone_else_gets_404(client, alice):
    assert client.get("/metrics", environ_base=REMOTE).status_code == 404
    assert alice.get("/metrics", environ_base=REMOTE).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic Zm9vOmJhcg=="])
def test_outside_the_embedded_default_loopback_alone_is_not_enough(app, client, header):
    app.config["METRICS_LOOPBACK"] = False
    try:
        headers = {"Authorization": header} if header else {}
        assert client.get("/metrics", headers=headers).status_code == 404
    finally:
        app.config["METRICS_LOOPBACK"] = True


def test_the_scrape_token_reads_it_from_anywhere(app, client):
    app.config["METRICS_TOKEN"] = "scrape-secret"
    try:
        headers = {"Authorization": "Bearer scrape-secret"}
        assert client.get("/metrics", headers=headers, environ_base=REMOTE).status_code == 200
    finally:
        app.config["METRICS_TOKEN"] = None


def test_an_admins_token_and_an_admins_session_read_it(app, client):
    admin = Account(client, "root")
    browser = WebUser(app, "rootweb")
    assert admin.get("/metrics", environ_base=REMOTE).status_code == 404
    assert browser.get("/metrics", environ_base=REMOTE).status_code == 404

    grant(app, "root")
    grant(app, "rootweb")

    assert admin.get("/metrics", environ_base=REMOTE).status_code == 200
    assert browser.get("/metrics", environ_base=REMOTE).status_code == 200


def test_the_page_counts_jobs_and_reminders_from_the_database(app, client, alice):
    alice.post("/api/v1/exports", json={"format": "csv"})
    app.extensions.pop(JOBS_EXTENSION, None)  # figures read by an earlier test are cached

    text = client.get("/metrics").data.decode()

    assert 'todoscale_jobs{kind="export",status="queued"} 1.0' in text
    assert "todoscale_job_queue_depth 1.0" in text
    assert 'todoscale_reminders_sent_total{channel="app"}' in text
