"""Exports and imports from the pages: start them, watch them, download the file, list them.

A job's progress is shown by `web/_job.html`: the page's script moves its bar with the
`job.updated` events (or polls `panel` when it has no live connection), and without
JavaScript the page refreshes itself until the job is done.
"""

from __future__ import annotations

from io import BytesIO

from flask import Blueprint, flash, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from todoscale.exceptions import PayloadTooLargeError, ValidationError
from todoscale.services import jobs
from todoscale.web.access import current_user, login_required
from todoscale.web.forms import ExportForm, ImportForm
from todoscale.web.job_panel import job_view, visible_lists
from todoscale.web.todos import render_home

bp = Blueprint("jobs", __name__)


@bp.post("/jobs/exports")
@login_required
def export() -> ResponseReturnValue:
    """Start an export of one list (`list_id`) or of every list, and show its progress."""
    form = ExportForm()
    list_id = request.form.get("list_id") or None
    if not form.validate_on_submit():
        flash(_("Choose CSV or JSON, then export again."), "error")
        back = url_for("web.todos.show", list_id=list_id) if list_id else url_for(".index")
        return redirect(back)
    job = jobs.create_export(current_user(), fmt=form.format.data or "", list_id=list_id)
    if list_id:
        return redirect(url_for("web.todos.show", list_id=list_id, job=job.id))
    return redirect(url_for(".show", job_id=job.id))


@bp.post("/lists/<list_id>/import")
@login_required
def import_(list_id: str) -> ResponseReturnValue:
    """Start an import of an export file into the list, and show its progress there."""
    form = ImportForm()
    if form.validate_on_submit():
        upload = form.file.data
        if upload is None or not upload.filename:
            form.file.errors = [_("Choose a file that an export wrote.")]
        else:
            data = upload.stream.read(jobs.MAX_IMPORT_BYTES + 1)
            try:
                job = jobs.create_import(
                    current_user(), list_id=list_id, filename=upload.filename, data=data
                )
            except ValidationError:
                form.file.errors = [_("This file is not a todoscale export (CSV or JSON).")]
            except PayloadTooLargeError:
                form.file.errors = [_("The file is too large.")]
            else:
                return redirect(url_for("web.todos.show", list_id=list_id, job=job.id))
    return render_home(list_id, import_form=form, status=422)


@bp.get("/jobs/<job_id>")
@login_required
def show(job_id: str) -> ResponseReturnValue:
    """One job: its progress, its error, its file."""
    job = jobs.get_job(current_user(), job_id)
    return render_template("web/job.html", **job_view(job))


@bp.get("/jobs/<job_id>/panel")
@login_required
def panel(job_id: str) -> ResponseReturnValue:
    """The job's panel alone, for the page's script to swap in."""
    job = jobs.get_job(current_user(), job_id)
    return render_template("web/_job.html", **job_view(job)), {"Cache-Control": "no-store"}


@bp.get("/jobs/<job_id>/download")
@login_required
def download(job_id: str) -> ResponseReturnValue:
    """An export's file, as an attachment (RFC 6266 `filename*` for any name)."""
    data, content_type, filename = jobs.job_result(current_user(), job_id)
    return send_file(
        BytesIO(data),
        mimetype=content_type,
        as_attachment=True,
        download_name=filename,
        max_age=0,
    )


@bp.get("/profile/jobs")
@login_required
def index() -> ResponseReturnValue:
    """The user's recent exports and imports."""
    visible = visible_lists()
    recent = [job_view(job, visible) for job in jobs.recent_jobs(current_user())]
    return render_template("web/jobs.html", recent=recent, export_form=ExportForm(formdata=None))
