"""The per-request layer: route rules as labels, SQL counted per request, the slow log line."""

from __future__ import annotations

import logging
import threading

from prometheus_client import REGISTRY

from todoscale.ops.metrics import UNMATCHED

DURATION = "todoscale_http_request_duration_seconds_count"


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_requests_are_counted_by_route_rule_never_by_raw_path(client, alice):
    todo = alice.add_todo()
    labels = {"endpoint": "/api/v1/todos/<todo_id>", "method": "GET", "status": "200"}
    before = _value(DURATION, **labels)

    alice.get(f"/api/v1/todos/{todo['id']}")
    alice.get(f"/api/v1/todos/{todo['id']}")

    assert _value(DURATION, **labels) == before + 2
    raw = {"endpoint": f"/api/v1/todos/{todo['id']}", "method": "GET", "status": "200"}
    assert _value(DURATION, **raw) == 0


def test_unknown_paths_and_methods_share_bounded_labels(client):
    labels = {"endpoint": UNMATCHED, "method": "OTHER", "status": "404"}
    before = _value(DURATION, **labels)

    client.open("/no/such/path/1", method="BREW")
    client.open("/no/such/path/2", method="BREW")

    assert _value(DURATION, **labels) == before + 2


def test_sql_statements_are_counted_per_route(client, alice):
    name = "todoscale_db_statements_total"
    before = _value(name, endpoint="/api/v1/todos")

    response = alice.post("/api/v1/todos", json={"title": "Count my SQL"})

    assert response.status_code == 201
    assert _value(name, endpoint="/api/v1/todos") > before
    assert _value("todoscale_db_statement_seconds_total", endpoint="/api/v1/todos") > 0


def test_a_slow_request_writes_one_line_with_its_request_id_and_sql(app, client, alice, records_of):
    app.config["SLOW_REQUEST_MS"] = 0.0  # every request is slow
    try:
        metrics = app.extensions["todoscale.metrics"]
        metrics.slow_seconds = 0.0
        with records_of("todoscale.slow", logging.WARNING) as records:
            response = alice.get("/api/v1/lists", headers={"X-Request-ID": "slow-one"})
    finally:
        metrics.slow_seconds = app.config["SLOW_REQUEST_MS"] = 500.0
    assert response.status_code == 200
    lines = [r for r in records if r.getMessage() == "slow request"]
    assert len(lines) == 1
    line = lines[0]
    assert line.request_id == "slow-one" and line.endpoint == "/api/v1/lists"
    assert line.sql_statements >= 1 and line.sql_ms >= 0


def test_with_observe_off_requests_pass_unmeasured(make_app):
    from flask_migrate import upgrade
    from sqlalchemy import event

    from tests.conftest import Account
    from todoscale.extensions import db
    from todoscale.ops import metrics

    app = make_app(OBSERVE=False)
    with app.app_context():
        upgrade()
        assert not event.contains(db.engine, "after_cursor_execute", metrics._after_execute)
    assert not isinstance(app.wsgi_app, metrics.RequestMetrics)
    account = Account(app.test_client(), "unobserved")
    labels = {"endpoint": "/api/v1/lists", "method": "GET", "status": "200"}
    before = (
        _value(DURATION, **labels),
        _value("todoscale_db_statements_total", endpoint="/api/v1/lists"),
    )

    assert account.get("/api/v1/lists").status_code == 200

    after = (
        _value(DURATION, **labels),
        _value("todoscale_db_statements_total", endpoint="/api/v1/lists"),
    )
    assert after == before
    assert metrics.of(app).recorder.peek() == ({}, [])  # no per-route statistics either


def test_a_request_never_waits_for_the_layers_lock_and_is_counted_once_it_is_free(client, alice):
    # Another thread holding the lock when the GIL moves on made every thread wait behind it
    # (a lock convoy: 15-25 us a request with 4 threads instead of 3); a request that finds
    # the lock taken now leaves its record for the next holder or the control thread.
    todo = alice.add_todo()
    labels = {"endpoint": "/api/v1/todos/<todo_id>", "method": "GET", "status": "200"}
    before = _value(DURATION, **labels)
    metrics = client.application.extensions["todoscale.metrics"]
    answered = threading.Event()

    def read() -> None:
        assert alice.get(f"/api/v1/todos/{todo['id']}").status_code == 200
        answered.set()

    with metrics.lock:  # as a thread of the same worker would, at the wrong moment
        reader = threading.Thread(target=read)
        reader.start()
        assert answered.wait(10), "the request waited for the layer's lock"
        assert _value(DURATION, **labels) == before  # queued, not written yet
    reader.join()

    metrics.ledger.flush()  # what the control thread does each second

    assert _value(DURATION, **labels) == before + 1
    rows, _slow = metrics.recorder.peek()
    assert rows[("/api/v1/todos/<todo_id>", "GET")][0] >= 1
    assert _value("todoscale_http_requests_in_flight") == 0
