"""The console's jobs page: failed jobs with their errors, and the retry button."""

from __future__ import annotations

from sqlalchemy import update

from tests.admin.conftest import grant
from tests.conftest import Recorder
from todoscale import signals
from todoscale.extensions import db
from todoscale.models import Job


def _failed_job(app, alice) -> str:
    job = alice.post("/api/v1/exports", json={"format": "csv"}).get_json()
    with app.app_context():
        db.session.execute(
            update(Job).where(Job.id == job["id"]).values(status="failed", error="disk full")
        )
        db.session.commit()
    return str(job["id"])


def test_a_failed_job_is_shown_with_its_error_and_retried(app, admin, alice, records_of):
    job_id = _failed_job(app, alice)
    page = admin.get("/admin/jobs").get_data(as_text=True)
    assert job_id in page and "disk full" in page
    queued = Recorder()
    signals.job_queued.connect(queued)
    try:
        with records_of("todoscale.security") as records:
            response = admin.post(f"/admin/jobs/{job_id}/retry")
    finally:
        signals.job_queued.disconnect(queued)

    assert response.status_code == 302
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert job.status == "queued" and job.error is None and job.attempts == 0
    assert [kwargs["job_id"] for _sender, kwargs in queued.calls] == [job_id]
    events = [r for r in records if r.getMessage() == "admin.job_retried"]
    assert events and events[0].user == "boss" and events[0].job_id == job_id


def test_only_a_failed_job_can_be_retried(app, admin, alice):
    job = alice.post("/api/v1/exports", json={"format": "csv"}).get_json()

    assert admin.post(f"/admin/jobs/{job['id']}/retry").status_code == 409
    assert admin.post("/admin/jobs/nojob/retry").status_code == 404


def test_revoking_the_role_closes_the_console_at_once(app, admin):
    assert admin.get("/admin/").status_code == 200
    with app.app_context():
        from todoscale.services import monitoring

        monitoring.set_admin("boss", False)
    assert admin.get("/admin/").status_code == 404
    grant(app, "boss")
    assert admin.get("/admin/").status_code == 200
