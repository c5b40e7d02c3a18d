"""Ready responses: a first page sent again as it was, only while what it was built from holds."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from flask import request, request_started

from todoscale.ops import ready

FIRST_PAGE = "/api/v1/todos?limit=10"


@pytest.fixture
def app_runs(app) -> Iterator[list[str]]:
    """The paths of the requests the Flask app itself handled (a replay never reaches it)."""
    handled: list[str] = []

    def note(sender, **_):
        handled.append(request.full_path.rstrip("?"))

    request_started.connect(note, app)
    yield handled
    request_started.disconnect(note, app)


def _without_request_id(response) -> list[tuple[str, str]]:
    return [(name, value) for name, value in response.headers if name != "X-Request-ID"]


def test_a_repeated_first_page_is_replayed_as_sent_with_its_own_request_id(alice, app_runs):
    alice.add_todo("one")
    first = alice.get(FIRST_PAGE)
    app_runs.clear()

    again = alice.get(FIRST_PAGE)

    assert app_runs == []  # answered before Flask
    assert again.status_code == 200
    assert again.data == first.data
    assert _without_request_id(again) == _without_request_id(first)
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert again.headers["Content-Security-Policy"]
    assert alice.get(FIRST_PAGE, headers={"X-Request-ID": "trace-9"}).headers["X-Request-ID"] == (
        "trace-9"
    )


def test_a_write_anywhere_is_read_at_once(alice, bob, app_runs):
    alice.get(FIRST_PAGE)
    alice.get(FIRST_PAGE)
    assert app_runs.count(FIRST_PAGE) == 1

    todo = alice.add_todo("new")
    page = alice.get(FIRST_PAGE).get_json()

    assert [item["id"] for item in page["items"]] == [todo["id"]]
    # Another user's page is another response: alice's write did not leak into it.
    assert bob.get(FIRST_PAGE).get_json()["items"] == []


def test_a_revoked_token_is_refused_at_once(alice):
    alice.get(FIRST_PAGE)
    assert alice.get(FIRST_PAGE).status_code == 200

    assert alice.delete("/api/v1/tokens").status_code == 204

    assert alice.get(FIRST_PAGE).status_code == 401


def test_a_kept_response_is_not_replayed_past_its_tokens_expiry(app, alice, monkeypatch):
    alice.get(FIRST_PAGE)
    middleware = app.extensions[ready.EXTENSION]
    assert isinstance(middleware, ready.ReadyResponses)
    (entry,) = [e for k, e in middleware.entries.items() if alice.token in (k[2] or "")]
    assert middleware._holds(entry)

    monkeypatch.setattr(ready.time, "time", lambda: entry.until)

    assert not middleware._holds(entry)


def test_only_successful_first_pages_are_kept(alice, client, app_runs):
    for todo in range(3):
        alice.add_todo(f"t{todo}")
    cursor = alice.get("/api/v1/todos?limit=1").get_json()["next_cursor"]
    second = f"/api/v1/todos?limit=1&cursor={cursor}"
    app_runs.clear()

    for _ in range(2):
        alice.get(second)
        client.get(FIRST_PAGE)  # no token: 401
        alice.get(FIRST_PAGE, headers={"If-None-Match": '"x"'})

    assert app_runs.count(second) == 2
    assert app_runs.count(FIRST_PAGE) == 4


def test_each_encoding_gets_its_own_response(alice, app_runs):
    for n in range(10):
        alice.add_todo(f"todo number {n}")  # a page worth compressing
    plain = alice.get(FIRST_PAGE)
    gzipped = alice.get(FIRST_PAGE, headers={"Accept-Encoding": "gzip"})
    app_runs.clear()

    assert alice.get(FIRST_PAGE).data == plain.data
    again = alice.get(FIRST_PAGE, headers={"Accept-Encoding": "gzip"})

    assert app_runs == []
    assert again.headers["Content-Encoding"] == "gzip" and again.data == gzipped.data
    assert "Content-Encoding" not in plain.headers


def test_a_replayed_request_is_logged_once_with_its_user(app, alice, monkeypatch):
    caught: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = caught.append  # type: ignore[method-assign]
    logger = logging.getLogger("todoscale.request")
    monkeypatch.setattr(logger, "handlers", [*logger.handlers, handler])
    monkeypatch.setattr(logger, "level", logging.INFO)
    middleware = app.extensions[ready.EXTENSION]
    monkeypatch.setattr(middleware, "log", True)
    monkeypatch.setitem(app.config, "REQUEST_LOG", True)

    alice.get(FIRST_PAGE, headers={"X-Request-ID": "computed"})
    alice.get(FIRST_PAGE, headers={"X-Request-ID": "replayed"})

    assert [r.request_id for r in caught] == ["computed", "replayed"]
    for record in caught:
        assert (record.method, record.path, record.status) == ("GET", "/api/v1/todos", 200)
        assert record.user_id == alice.user["id"]
        assert record.duration_ms >= 0


def test_a_replayed_request_is_counted_under_its_route_rule(alice, app_runs):
    from prometheus_client import REGISTRY

    def count() -> float:
        labels = {"endpoint": "/api/v1/todos", "method": "GET", "status": "200"}
        return REGISTRY.get_sample_value("todoscale_http_request_duration_seconds_count", labels)

    alice.get(FIRST_PAGE)
    before = count()
    app_runs.clear()

    alice.get(FIRST_PAGE)

    assert app_runs == []  # replayed
    assert count() == before + 1


def test_a_request_asking_for_its_profile_is_never_replayed(alice, app_runs):
    alice.get(FIRST_PAGE)
    app_runs.clear()

    alice.get(FIRST_PAGE, headers={"X-Todoscale-Profile": "1"})

    assert app_runs == [FIRST_PAGE]


@pytest.fixture
def armed(app) -> Iterator[object]:
    """Arm a profile order on an endpoint (this process sees it at once); disarmed after."""
    from todoscale.ops import control, metrics

    controls = metrics.of(app).controls

    def arm(endpoint: str) -> None:
        control.arm(controls.root, endpoint, 5, 60, "test")
        controls.poll()

    yield arm
    control.disarm(controls.root)
    controls.poll()


def test_a_profile_armed_on_another_endpoint_leaves_replays_alone(alice, app_runs, armed):
    alice.get(FIRST_PAGE)
    armed("/api/v1/lists")
    app_runs.clear()

    alice.get(FIRST_PAGE)
    alice.get(FIRST_PAGE)

    assert app_runs == []  # replayed: only the armed endpoint's requests must run


def test_a_profile_armed_on_this_endpoint_makes_its_requests_run(app, alice, app_runs, armed):
    from todoscale.ops import metrics, profiling

    alice.get(FIRST_PAGE)
    armed("/api/v1/todos")
    app_runs.clear()

    alice.get(FIRST_PAGE)

    assert app_runs == [FIRST_PAGE]
    assert profiling.reports(metrics.of(app).root)  # it ran, and was profiled


def test_a_replayed_request_is_in_the_statistics_with_its_request_id(app, alice, app_runs):
    from todoscale.ops import metrics

    recorder = metrics.of(app).recorder
    alice.get(FIRST_PAGE)
    recorder.take()  # a new minute: only the replay in it
    app_runs.clear()

    response = alice.get(FIRST_PAGE, headers={"X-Request-ID": "replayed-1"})

    assert app_runs == []  # replayed
    rows, slowest = recorder.peek()
    assert rows[("/api/v1/todos", "GET")][0] == 1
    assert [(s.request_id, s.endpoint, s.status) for s in slowest] == [
        ("replayed-1", "/api/v1/todos", 200)
    ]
    assert response.headers["X-Request-ID"] == "replayed-1"


def test_a_replay_leaves_the_in_flight_gauge_as_it_found_it(alice, app_runs):
    from prometheus_client import REGISTRY

    def in_flight() -> float | None:
        return REGISTRY.get_sample_value("todoscale_http_requests_in_flight")

    alice.get(FIRST_PAGE)
    before = in_flight()
    app_runs.clear()

    alice.get(FIRST_PAGE)

    assert app_runs == []
    assert in_flight() == before
