"""The console's jobs: queued, running and failed (with their errors), and a retry button."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from todoscale.admin.access import admin
from todoscale.admin.forms import ButtonForm
from todoscale.models.jobs import FAILED, QUEUED, RUNNING
from todoscale.services import monitoring
from todoscale.web.job_errors import translate_error

bp = Blueprint("jobs", __name__, url_prefix="/jobs")


@bp.get("")
def index() -> ResponseReturnValue:
    """Jobs by status, newest first."""
    found = {status: monitoring.recent_jobs(status) for status in (QUEUED, RUNNING, FAILED)}
    owners = monitoring.usernames({job.user_id for jobs in found.values() for job in jobs})
    # A failed job's error in the reader's language, as the user's own job page shows it.
    errors = {job.id: translate_error(job.error) for job in found[FAILED] if job.error}
    return render_template(
        "admin/jobs.html", jobs=found, owners=owners, errors=errors, form=ButtonForm()
    )


@bp.post("/<job_id>/retry")
def retry(job_id: str) -> ResponseReturnValue:
    """Queue a failed job again."""
    job = monitoring.retry_job(admin(), job_id)
    flash(_("Job %(id)s is queued again.", id=job.id), "success")
    return redirect(url_for(".index"))
