"""PostgreSQL stopped (`pg_ctl stop -m fast`) under the mixed-traffic load at half of the
measured capacity, then started again: a cluster of the test's own (tests/chaos/postgres.py)
behind a real server. While it is down every answer must be a 503 problem+json with
`Retry-After` (never a 500), and once it is back the server must answer again at once, with
no acknowledged write lost. It runs in the PostgreSQL pass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade

from tests.chaos.conftest import LIMITS, start_server
from tests.chaos.faults import (
    HALF,
    Action,
    Script,
    count,
    first_answer,
    run_with_faults,
    seconds_or_never,
    step,
)
from tests.chaos.figures import bounded, database_kind, report
from tests.chaos.load import audit, seed_tokens, totals
from tests.chaos.postgres import Cluster, binaries
from tests.conftest import skip_or_fail
from todoscale import create_app
from todoscale.extensions import db

STOPPED = bounded(fast=2, full=20)  # seconds between `pg_ctl stop` and `pg_ctl start`


@pytest.fixture(scope="module")
def cluster_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Flask]]:
    """A cluster of the test's own, migrated, and an app on it (to seed and to audit)."""
    if database_kind() != "postgresql":
        pytest.skip("a fault of PostgreSQL: run in the PostgreSQL pass")
    folder = binaries()
    if folder is None:
        skip_or_fail("no PostgreSQL binaries (initdb, pg_ctl) under /usr/lib/postgresql; "
                     "install postgresql or set TODOSCALE_PG_BIN")  # fmt: skip
    assert folder is not None
    cluster = Cluster(folder)
    try:
        cluster.init()
        instance = str(tmp_path_factory.mktemp("pg-instance"))
        app = create_app(
            {
                "ENV_NAME": "testing",
                "SQLALCHEMY_DATABASE_URI": cluster.url,
                "INSTANCE_PATH": instance,
            }
        )
        with app.app_context():
            upgrade()
        try:
            yield cluster, app
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    finally:
        cluster.destroy()


def test_postgresql_stopped_is_503_then_back(
    cluster_app: tuple[Cluster, Flask], tmp_path: Path
) -> None:
    cluster, app = cluster_app
    server = start_server(cluster.url, tmp_path / "server", LIMITS)
    try:
        tokens = seed_tokens(app, "pgstop")
        stop, start = Action(0, "stop", cluster.stop), Action(STOPPED, "start", cluster.start)
        script = Script(tmp_path / "stopped.started", [stop, start])
        then = [
            {"factor": 0, "seconds": bounded(fast=3, full=30), "label": "pause"},  # drained
            {"factor": HALF, "seconds": bounded(fast=1, full=10), "label": "before"},
            {"factor": HALF, "seconds": STOPPED + 2, "label": "stopped", "timeline": True,
             "started_file": str(script.marker)},
            {"factor": HALF, "seconds": bounded(fast=2, full=15), "label": "after",
             "timeline": True},
        ]  # fmt: skip
        result = run_with_faults(server.url, tokens, tmp_path / "driver", then, [script])
    finally:
        server.stop()
    stopped, after = step(result, "stopped"), step(result, "after")
    entries = stopped["timeline"] + after["timeline"]
    down, back = script.at("step", result), script.at("start", result)
    refused = first_answer(entries, down, range(503, 504))
    again = first_answer(entries, back, range(200, 300))
    lost, partial, acknowledged = audit(app, result["todos"])
    run = totals(result)
    errors_500, failures = run["errors_500"], {**stopped["failures"], **after["failures"]}
    held = (
        not errors_500 and not failures and refused is not None and refused <= 3
        and again is not None and again <= 5 and not lost
    )  # fmt: skip
    report(
        "postgresql-stopped",
        f"first_503_problem_{seconds_or_never(refused)}_after_the_stop,first_2xx_{seconds_or_never(again)}"
        f"_after_it_was_back,{errors_500}_x_500,{count([stopped, after], '503')}_x_503,"
        f"{sum(failures.values())}_failed{failures or ''},"
        f"{lost}_lost_of_{acknowledged}_acknowledged,{partial}_partial"
        f"_at_{stopped['rate']:.0f}_req/s(0.5x)_stopped_{back - down:.1f}s",
        "503_problem<=3s,first_2xx<=5s_after_back,0_x_500,0_lost_acknowledged",
        held=held,
    )
    assert errors_500 == 0, run["failures"]
    assert not failures, (failures, result["oddities"])  # a 503 without problem+json fails
    assert refused is not None, "no 503 while PostgreSQL was stopped"
    assert again is not None, "no 2xx after PostgreSQL was back"
    assert lost == 0 and partial == 0
    # The seconds to the first 503 and to the first 2xx are the figure's (held or not, in the
    # table), not timed assertions.
