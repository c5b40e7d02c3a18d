"""Background jobs: exports and imports are created here and run by a worker."""

from __future__ import annotations

import io

from flask import Blueprint, request, send_file
from flask.typing import ResponseReturnValue

from todoscale.api.auth import current_user, token_required
from todoscale.api.body import parse
from todoscale.api.operation import operation
from todoscale.api.schemas import NO_NUL_PATTERN, JobCreate, JobRead, job_json
from todoscale.config import Settings
from todoscale.exceptions import PayloadTooLargeError, ValidationError
from todoscale.services import jobs

bp = Blueprint("jobs", __name__)


def _accepted(data: dict[str, object]) -> ResponseReturnValue:
    return data, 202, {"Location": str(data["url"])}


@bp.post("/exports")
@operation(
    "Queue an export (CSV or JSON)", ok=202, out=JobRead, body=JobCreate, fails="401 404 422"
)
@token_required
def export() -> ResponseReturnValue:
    """Queue an export; 202 with the job, whose `result_url` serves the file once done."""
    body = parse(JobCreate)
    return _accepted(
        job_json(jobs.create_export(current_user(), fmt=body.format, list_id=body.list_id))
    )


@bp.post("/imports")
@operation(
    "Queue an import of an export file",
    ok=202,
    out=JobRead,
    body={
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "list_id"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "A CSV or JSON file as an export wrote it: at most "
                        f"{jobs.MAX_IMPORT_BYTES} bytes and TODOSCALE_IMPORT_MAX_ROWS rows "
                        f"({Settings.model_fields['IMPORT_MAX_ROWS'].default:,} unless "
                        "configured); more is 413 or 422",
                    },
                    "list_id": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 64,
                        "pattern": NO_NUL_PATTERN,
                        "description": "The list the rows go into (required)",
                    },
                },
            }
        }
    },
    fails="401 404 413 422",
)
@token_required
def import_() -> ResponseReturnValue:
    """Queue an import of an export file (multipart `file`) into the list `list_id`."""
    upload = request.files.get("file")
    list_id = request.form.get("list_id", "")
    errors: dict[str, list[str]] = {}
    if upload is None:
        errors["file"] = ["is required: send the file as multipart/form-data field 'file'"]
    if not list_id:
        errors["list_id"] = ["is required"]
    if errors:
        raise ValidationError(errors)
    assert upload is not None
    data = upload.stream.read(jobs.MAX_IMPORT_BYTES + 1)
    if len(data) > jobs.MAX_IMPORT_BYTES:
        raise PayloadTooLargeError(f"The file is larger than {jobs.MAX_IMPORT_BYTES} bytes.")
    job = jobs.create_import(
        current_user(), list_id=list_id, filename=upload.filename or "", data=data
    )
    return _accepted(job_json(job))


@bp.get("/jobs/<job_id>")
@operation("One of the caller's jobs", ok=200, out=JobRead, fails="401 404")
@token_required
def get(job_id: str) -> ResponseReturnValue:
    """One of the caller's jobs."""
    return job_json(jobs.get_job(current_user(), job_id))


@bp.get("/jobs/<job_id>/result")
@operation(
    "An export's file",
    ok=200,
    out={"description": "The export file", "content": {"text/csv": {}, "application/json": {}}},
    fails="401 404 409",
)
@token_required
def result(job_id: str) -> ResponseReturnValue:
    """An export's file, as an attachment; 409 until the export has succeeded.

    werkzeug writes the name as RFC 6266 wants it: an ASCII `filename`, and the full name
    in UTF-8 as RFC 5987's `filename*` when it has other characters (a list's Chinese
    name), which no header could hold as they are.
    """
    data, content_type, filename = jobs.job_result(current_user(), job_id)
    response = send_file(io.BytesIO(data), as_attachment=True, download_name=filename)
    response.content_type = content_type  # as the job recorded it (send_file adds a charset)
    return response
