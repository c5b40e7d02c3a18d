"""Leak hunting: a deliberately leaking view is at the top of the snapshot diff, by line."""

from __future__ import annotations

import inspect

from flask_migrate import upgrade

from tests.admin.conftest import grant
from tests.web.conftest import WebUser
from todoscale.ops import leaks, stats
from todoscale.ops.control import Controls
from todoscale.ops.metrics import of

HOARD: list[bytes] = []


def leak() -> str:
    """A view that keeps 10 kB of every request (the leak to find)."""
    HOARD.append(b"x" * 10_240)
    return "leaked"


LEAK_LINE = inspect.getsourcelines(leak)[1] + 2


def test_the_leaking_line_tops_the_diff_with_its_file_and_line(make_app):
    app = make_app()
    app.add_url_rule("/test/leak", "leak", leak)
    with app.app_context():
        upgrade()
    admin = WebUser(app, "hunter")
    grant(app, "hunter")
    controls = of(app).controls

    assert admin.post("/admin/memory/start", data={"minutes": 5, "frames": 1}).status_code == 302
    controls.poll()  # the control thread does this every second; here, now
    for _ in range(200):
        admin.client.get("/test/leak")
    assert admin.post("/admin/memory/snapshot").status_code == 302
    controls.poll()

    window = leaks.current_window(of(app).root)
    assert window is not None
    (pid,) = leaks.snapshots(of(app).root, window.id)
    top = leaks.growth(of(app).root, window.id, pid, 0, 1)[0]
    assert top["where"] == f"{__file__}:{LEAK_LINE}"
    assert top["size_diff"] >= 200 * 10_240
    page = admin.get("/admin/memory").get_data(as_text=True)
    assert f"test_memory.py:{LEAK_LINE}" in page
    # objgraph's growth by type (it sees objects the garbage collector tracks: not bytes).
    assert "Objects grown by type" in page
    assert admin.post("/admin/memory/stop").status_code == 302
    controls.poll()
    import tracemalloc

    assert not tracemalloc.is_tracing()


def test_a_process_dumps_each_snapshot_once_however_many_of_its_apps_share_the_folder(
    tmp_path, monkeypatch
):
    # Every app a process builds on one instance folder has a control thread following the
    # same window (the suite builds dozens): tracemalloc and the snapshots are the process's,
    # so one of them takes each snapshot, not every one (each a walk of the whole heap).
    dumped: list[tuple[str, int]] = []
    monkeypatch.setattr(leaks.Tracer, "_dump", lambda self, window, number: dumped.append(
        (window, number)))  # fmt: skip
    first, second = (Controls(tmp_path, stats.Recorder()) for _ in range(2))
    window = leaks.open_window(tmp_path, 1, 1, "test")
    try:
        first.poll()
        second.poll()
        leaks.ask_snapshot(tmp_path)
        second.poll()
        first.poll()
    finally:
        leaks.close_window(tmp_path)
        first.poll()
        second.poll()
    assert dumped == [(window.id, 0), (window.id, 1)]
    import tracemalloc

    assert not tracemalloc.is_tracing()
