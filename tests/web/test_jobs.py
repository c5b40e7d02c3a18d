"""web.jobs: exports and imports from the pages, their panels, the download, the jobs page.

The jobs run as a worker runs them (`run_job`, what the task calls); the browser tests run a
real worker.
"""

from __future__ import annotations

import re
from io import BytesIO
from urllib.parse import quote

from todoscale.extensions import db
from todoscale.models import Job
from todoscale.services import jobs, transfer


def _job_id(location: str) -> str:
    match = re.search(r"job=([0-9a-f]+)|/jobs/([0-9a-f]+)$", location)
    assert match, location
    return match.group(1) or match.group(2)


def _run(app, job_id: str) -> None:
    with app.app_context():
        jobs.run_job(job_id, worker_name="test")
        db.session.remove()


def _csv(*titles: str) -> bytes:
    blank = dict.fromkeys(transfer.FIELDS)
    return transfer.render([{**blank, "list": "L", "title": t, "notes": ""} for t in titles], "csv")


def test_export_from_a_list_shows_the_job_at_once_then_its_download(app, ann):
    list_id = ann.new_list("Книги и 书")
    ann.add_todo(list_id, "War and Peace")
    response = ann.post("/jobs/exports", {"format": "json", "list_id": list_id})
    assert response.status_code == 302
    job_id = _job_id(response.headers["Location"])
    page = ann.text(response.headers["Location"])
    assert f'id="job-{job_id}"' in page and 'data-status="queued"' in page
    assert '<progress class="job-bar" max="100" value="0"' in page
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page

    _run(app, job_id)
    panel = ann.text(f"/jobs/{job_id}/panel")
    assert 'data-status="succeeded"' in panel and 'value="100"' in panel
    assert "refresh" not in ann.text(f"/lists/{list_id}?job={job_id}").split("</head>")[0]
    download = ann.get(f"/jobs/{job_id}/download")
    assert download.status_code == 200 and download.mimetype == "application/json"
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote('Книги-и-书')}" in disposition
    assert [row["title"] for row in download.get_json()["todos"]] == ["War and Peace"]


def test_export_of_every_list_from_the_profile_goes_to_the_job_page(app, ann):
    ann.add_todo(ann.inbox_id(), "One")
    assert 'action="/jobs/exports"' in ann.text("/profile")
    response = ann.post("/jobs/exports", {"format": "csv"})
    job_id = _job_id(response.headers["Location"])
    assert response.headers["Location"].endswith(f"/jobs/{job_id}")
    _run(app, job_id)
    page = ann.text(f"/jobs/{job_id}")
    assert "Export of every list as CSV" in page and f"/jobs/{job_id}/download" in page
    assert ann.get(f"/jobs/{job_id}/download").get_data(as_text=True).count("\r\n") == 2


def test_an_import_with_bad_rows_names_them_in_the_readers_language(app, ann):
    list_id = ann.new_list("Target")
    data = _csv("Fine", "   ", "Also fine", "x" * 501)
    response = ann.post(
        f"/lists/{list_id}/import",
        {"file": (BytesIO(data), "待办.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    job_id = _job_id(response.headers["Location"])
    _run(app, job_id)
    page = ann.text(f"/lists/{list_id}?job={job_id}")
    assert "Import of 待办.csv into Target" in page
    assert "Row 2: title must not be empty" in page
    assert "Row 4: title must be at most 500 characters" in page
    ann.post("/profile/language", {"locale": "zh_Hans"})
    page = ann.text(f"/jobs/{job_id}")
    assert "第 2 行：标题不能为空" in page and "第 4 行：标题最多 500 个字符" in page  # noqa: RUF001
    with app.app_context():
        assert db.session.get(Job, job_id).error.startswith("row 2: title must not be empty")


def test_an_import_that_succeeds_links_to_the_list_and_the_todos_are_there(app, ann):
    list_id = ann.new_list("Target")
    response = ann.post(
        f"/lists/{list_id}/import",
        {"file": (BytesIO(_csv("Imported one", "Imported two")), "a.csv")},
        content_type="multipart/form-data",
    )
    job_id = _job_id(response.headers["Location"])
    _run(app, job_id)
    page = ann.text(f"/lists/{list_id}?job={job_id}")
    assert "The todos of the file are in the list now." in page
    assert page.count('class="todo-title"') == 3  # the two, and the live item's template


def test_a_file_that_is_not_an_export_is_refused_on_the_form(ann):
    list_id = ann.inbox_id()
    response = ann.post(
        f"/lists/{list_id}/import",
        {"file": (BytesIO(b"just text"), "notes.txt")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "This file is not a todoscale export (CSV or JSON)." in response.get_data(as_text=True)
    missing = ann.post(f"/lists/{list_id}/import", {}, content_type="multipart/form-data")
    assert missing.status_code == 422
    assert "Choose a file that an export wrote." in missing.get_data(as_text=True)


def test_jobs_page_lists_recent_jobs_with_status_time_and_links(app, ann, ben):
    list_id = ann.new_list("Errands")
    done = _job_id(
        ann.post("/jobs/exports", {"format": "csv", "list_id": list_id}).headers["Location"]
    )
    _run(app, done)
    waiting = _job_id(ann.post("/jobs/exports", {"format": "json"}).headers["Location"])
    page = ann.text("/profile/jobs")
    assert page.index(f"jobs-row-{waiting}") < page.index(f"jobs-row-{done}")
    assert f"/jobs/{done}/download" in page and f"/jobs/{waiting}/download" not in page
    assert "Export of Errands as CSV" in page and "Waiting" in page and "<time" in page
    assert f"jobs-row-{done}" not in ben.text("/profile/jobs")
    assert ben.get(f"/jobs/{done}").status_code == 404
    assert ben.get(f"/jobs/{done}/download").status_code == 404
    assert ben.get(f"/jobs/{done}/panel").status_code == 404
    assert "job-" + done not in ben.text(f"/lists/{ben.inbox_id()}?job={done}")


def test_a_failed_export_says_why_in_the_readers_language(app, ann):
    list_id = ann.new_list("Doomed")
    job_id = _job_id(
        ann.post("/jobs/exports", {"format": "csv", "list_id": list_id}).headers["Location"]
    )
    ann.post(f"/lists/{list_id}/delete")
    _run(app, job_id)
    ann.post("/profile/language", {"locale": "zh_Hans"})
    page = ann.text(f"/jobs/{job_id}")
    assert "该清单已不存在，或者你已不是它的成员。" in page  # noqa: RUF001
    assert ann.get(f"/jobs/{job_id}/download").status_code == 409
