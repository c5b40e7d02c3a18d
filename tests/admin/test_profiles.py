"""Profile the next N requests of an endpoint, whichever process serves them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.admin.conftest import grant
from tests.deploy.helpers import free_port_run, stop_group
from tests.ops import test_multiprocess as served
from todoscale.ops import control, profiling
from todoscale.ops.metrics import of


def _poll(app):
    of(app).controls.poll()  # what the control thread does every second


def test_an_armed_order_profiles_exactly_n_requests_of_its_endpoint(app, admin, alice):
    root = of(app).root
    page = admin.get("/admin/profiles")
    assert "/api/v1/todos" in page.get_data(as_text=True)
    response = admin.post("/admin/profiles", data={"endpoint": "/api/v1/todos", "count": 3,
                                                   "minutes": 5})  # fmt: skip
    assert response.status_code == 302
    _poll(app)
    before = len(profiling.reports(root))

    for _ in range(5):
        alice.get("/api/v1/todos")
        alice.get("/api/v1/lists")  # another endpoint: never profiled
    _poll(app)

    reports = profiling.reports(root)[: len(profiling.reports(root)) - before]
    assert len(reports) == 3
    assert {r["endpoint"] for r in reports} == {"/api/v1/todos"}
    assert {r["view"] for r in reports} == {"todoscale.api.todos.index"}
    assert control.current_order(root) is None and of(app).controls.order is None
    html = admin.get(f"/admin/profiles/{reports[0]['id']}")
    assert html.status_code == 200 and "sandbox" in html.headers["Content-Security-Policy"]
    combined = admin.get(f"/admin/profiles/combined?order={reports[0]['order']}")
    assert combined.status_code == 200 and b"index" in combined.data
    flame = admin.get(f"/admin/profiles/{reports[0]['id']}/flame")
    assert flame.status_code == 302 and "profileURL=" in flame.headers["Location"]
    data = admin.get(f"/admin/profiles/{reports[0]['id']}/speedscope.json").get_json()
    assert data["$schema"].startswith("https://www.speedscope.app")


def test_an_order_runs_out_after_its_time(app):
    root = of(app).root
    order = control.arm(root, "/api/v1/todos", 5, 1, "test")
    assert control.current_order(root) == order
    order.expires_at = time.time() - 1
    control._write(root / control.FOLDER / control.ORDER_FILE, vars(order))
    assert control.current_order(root) is None
    assert control.claim(root, "/api/v1/todos") is None


def test_an_admins_token_with_the_header_profiles_one_request(app, client, alice):
    root = of(app).root
    before = len(profiling.reports(root))
    alice.get("/api/v1/lists", headers={"X-Todoscale-Profile": "1"})  # not an admin
    assert len(profiling.reports(root)) == before
    grant(app, "alice")

    alice.get("/api/v1/lists", headers={"X-Todoscale-Profile": "1"})

    (newest, *_) = profiling.reports(root)
    assert len(profiling.reports(root)) == before + 1
    assert newest["order"] == profiling.HEADER_ORDER and newest["view"].endswith("lists.index")


def test_an_order_is_served_by_both_workers_of_a_real_server(tmp_path):
    port = free_port_run(1)
    root = tmp_path / "metrics"
    # Armed before the workers start: each reads the orders at its first request.
    control.arm(root, "/readyz", 8, 300, "test")
    proc = served._start("granian", tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        served._both_workers_up(base)
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(8) as pool:
            while len(profiling.reports(root)) < 8:
                assert time.monotonic() < deadline, profiling.reports(root)
                list(pool.map(lambda _: served._get(f"{base}/readyz"), range(16)))
            list(pool.map(lambda _: served._get(f"{base}/readyz"), range(32)))
    finally:
        stop_group(proc)
    reports = profiling.reports(root)
    assert len(reports) == 8  # exactly N, though many more requests came
    assert len({r["pid"] for r in reports}) == 2
    assert {r["view"] for r in reports} == {"todoscale.ops.health.readyz"}
    session = profiling.load(root, [r["id"] for r in reports])
    assert session is not None and "readyz" in profiling.render_html(session)
