"""Job metrics come from the job table: right for a real worker on the embedded queue too."""

from __future__ import annotations

from tests.tasks.test_worker import _finished
from todoscale.ops.exposition import JOBS_EXTENSION


def _sample(text: str, start: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(start)]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_a_real_workers_exports_show_in_metrics_by_kind_and_outcome(
    app, client, start_worker, alice
):
    start_worker()
    jobs = [alice.post("/api/v1/exports", json={"format": "csv"}).get_json() for _ in range(3)]
    for job in jobs:
        assert _finished(alice, job["id"])["status"] == "succeeded"
    app.extensions.pop(JOBS_EXTENSION, None)  # figures read by an earlier test are cached

    text = client.get("/metrics").data.decode()

    done = 'todoscale_job_duration_seconds_count{kind="export",outcome="succeeded"'
    assert _sample(text, done) == 3
    assert _sample(text, 'todoscale_job_queue_wait_seconds_count{kind="export"') == 3
    assert 'todoscale_jobs{kind="export",status="succeeded"} 3.0' in text
    assert "todoscale_job_queue_depth 0.0" in text
