"""What a job's panel (`web/_job.html`) shows: the job, what it was asked, its list, its error."""

from __future__ import annotations

from typing import Any

from flask import request

from todoscale.exceptions import NotFoundError
from todoscale.models import Job, TodoList
from todoscale.services import jobs, lists
from todoscale.web.access import current_user
from todoscale.web.job_errors import translate_error


def job_view(job: Job, visible: dict[str, TodoList] | None = None) -> dict[str, Any]:
    """The panel's values; `visible` (the user's lists by id) saves a query per job."""
    if visible is None:
        visible = visible_lists()
    params = jobs.job_params(job)
    return {
        "job": job,
        "params": params,
        "target": visible.get(params["list_id"] or ""),
        "error": translate_error(job.error) if job.error else None,
    }


def visible_lists() -> dict[str, TodoList]:
    """The user's lists by id."""
    return {info.todo_list.id: info.todo_list for info in lists.list_lists(current_user())}


def shown_job() -> dict[str, Any] | None:
    """The panel of the job the page's `?job=` names, if it is one of the user's."""
    job_id = request.args.get("job")
    if not job_id:
        return None
    try:
        return job_view(jobs.get_job(current_user(), job_id))
    except NotFoundError:  # someone else's link, or a job gone with its user: no panel
        return None
