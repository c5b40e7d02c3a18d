"""The jobs API: status codes, shapes and errors (the work itself: tests/services/test_jobs.py,
and through a real worker: tests/tasks/test_worker.py)."""

from __future__ import annotations

import io
import re
import urllib.request

import orjson
import pytest
from werkzeug.http import parse_options_header
from werkzeug.test import EnvironBuilder

from tests.conftest import assert_shape
from tests.realtime.conftest import SocketServer, queue_env, running
from todoscale.api.schemas import JobRead
from todoscale.services import jobs


def post_import(account, list_id, data, name="todos.csv"):
    """POST an import of `data` into `list_id` as `account` (multipart, like a browser)."""
    builder = EnvironBuilder(
        path="/api/v1/imports",
        method="POST",
        headers=account.headers,
        data={"list_id": list_id, "file": (io.BytesIO(data), name)},
    )
    environ = builder.get_environ()
    try:
        return account.client.open(environ)
    finally:
        # Bodies over 500 KB are spooled to a temporary file the builder leaves open.
        environ["wsgi.input"].close()
        builder.close()


def _run(app, job_id):
    """Run the job as the worker would (the task calls exactly this)."""
    with app.app_context():
        jobs.run_job(job_id, worker_name="test")


def test_an_export_is_accepted_with_its_location_and_the_job_shape(alice):
    response = alice.post("/api/v1/exports", json={"format": "csv"})

    assert response.status_code == 202
    job = response.get_json()
    assert_shape(JobRead, job)
    assert (job["kind"], job["status"], job["progress"], job["result_url"]) == (
        "export",
        "queued",
        0,
        None,
    )
    assert response.headers["Location"] == job["url"]
    assert job["url"].endswith(f"/api/v1/jobs/{job['id']}")
    assert alice.get(job["url"]).get_json() == job


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"format": "xml"}, "format"),
        ({}, "format"),
        ({"format": "csv", "colour": "red"}, "colour"),
        ({"format": "csv", "list_id": 7}, "list_id"),
    ],
)
def test_a_bad_export_request_is_422_naming_the_field(alice, body, field):
    response = alice.post("/api/v1/exports", json=body)

    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_exports_of_lists_you_cannot_see_are_404(alice, bob):
    response = bob.post("/api/v1/exports", json={"format": "csv", "list_id": alice.inbox_id})

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_jobs_of_other_users_are_404(alice, bob):
    job = alice.post("/api/v1/exports", json={"format": "json"}).get_json()

    assert bob.get(f"/api/v1/jobs/{job['id']}").status_code == 404
    assert bob.get(f"/api/v1/jobs/{job['id']}/result").status_code == 404
    assert alice.get("/api/v1/jobs/nope").status_code == 404


def test_the_result_is_409_until_done_then_an_attachment(app, alice):
    alice.add_todo("Milk")
    job = alice.post("/api/v1/exports", json={"format": "csv"}).get_json()

    pending = alice.get(f"/api/v1/jobs/{job['id']}/result")
    assert pending.status_code == 409
    assert "queued" in pending.get_json()["detail"]

    _run(app, job["id"])
    done = alice.get(job["url"]).get_json()
    assert (done["status"], done["progress"]) == ("succeeded", 100)
    assert done["result_url"] == f"{job['url']}/result"
    assert done["finished_at"] is not None
    response = alice.get(done["result_url"])

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition, names = parse_options_header(response.headers["Content-Disposition"])
    assert disposition == "attachment"
    assert re.fullmatch(r"todos-\d{8}T\d{6}Z\.csv", names["filename"])
    assert response.data.decode().splitlines()[1].startswith("Inbox,Milk,")


def test_an_export_of_a_list_with_a_chinese_name_downloads_from_a_real_server(app, alice, tmp_path):
    """The name went into Content-Disposition as it was: gunicorn could not encode the
    header, and closed the connection without a response."""
    list_id = alice.post("/api/v1/lists", json={"name": "购物清单"}).get_json()["id"]
    alice.add_todo("牛奶", list_id=list_id)
    job = alice.post("/api/v1/exports", json={"format": "csv", "list_id": list_id}).get_json()
    _run(app, job["id"])
    path = f"/api/v1/jobs/{job['id']}/result"

    with running(
        SocketServer(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path, queue_env(app))
    ) as s:
        request = urllib.request.Request(s.url + path, headers=alice.headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            status, header, body = response.status, response.headers, response.read()

    assert status == 200
    raw = header["Content-Disposition"]
    assert raw.isascii(), raw
    disposition, names = parse_options_header(raw)  # filename* decoded, as a browser does
    assert disposition == "attachment"
    assert re.fullmatch(r"购物清单-\d{8}T\d{6}Z\.csv", names["filename"]), raw
    assert re.search(r"; filename=-?\d{8}T\d{6}Z\.csv;", raw), raw  # the ASCII fallback
    assert "牛奶" in body.decode()


def test_an_import_is_accepted_and_runs(app, alice):
    data = orjson.dumps({"todos": [{"title": "From a file", "completed": False}]})

    response = post_import(alice, alice.inbox_id, data, "anything.txt")

    assert response.status_code == 202
    job = response.get_json()
    assert_shape(JobRead, job)
    assert job["kind"] == "import"
    assert response.headers["Location"] == job["url"]
    _run(app, job["id"])
    assert alice.get(job["url"]).get_json()["result_url"] is None
    assert [t["title"] for t in alice.get("/api/v1/todos").get_json()["items"]] == ["From a file"]


def test_an_import_needs_a_file_and_a_list(alice):
    no_file = alice.post(
        "/api/v1/imports", data={"list_id": alice.inbox_id}, content_type="multipart/form-data"
    )
    assert no_file.status_code == 422
    assert list(no_file.get_json()["errors"]) == ["file"]
    no_list = alice.post(
        "/api/v1/imports",
        data={"file": (io.BytesIO(b"title\nx\n"), "a.csv")},
        content_type="multipart/form-data",
    )
    assert no_list.status_code == 422
    assert list(no_list.get_json()["errors"]) == ["list_id"]
    as_json = alice.post("/api/v1/imports", json={"list_id": alice.inbox_id})
    assert as_json.status_code == 422


def test_an_import_of_what_is_not_an_export_is_422(alice):
    response = post_import(alice, alice.inbox_id, b"\x89PNG\r\n\x1a\n", "todos.csv")

    assert response.status_code == 422
    assert "not a todoscale export" in response.get_json()["detail"]


def test_an_import_into_a_list_you_cannot_see_is_404(alice, bob):
    assert post_import(bob, alice.inbox_id, b"title\nx\n").status_code == 404


def test_an_import_over_10_mib_is_413(alice):
    response = post_import(alice, alice.inbox_id, b"title\n" + b"x" * (10 * 1024 * 1024))

    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_jobs_need_a_token(client):
    assert client.post("/api/v1/exports", json={"format": "csv"}).status_code == 401
    assert client.post("/api/v1/imports").status_code == 401
    assert client.get("/api/v1/jobs/x").status_code == 401
    assert client.get("/api/v1/jobs/x/result").status_code == 401


def test_an_import_over_the_row_cap_is_422_and_writes_nothing(app, alice, row_counts, monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_MAX_ROWS", 2)
    before = row_counts()

    response = post_import(alice, alice.inbox_id, b"title\none\ntwo\nthree\n")

    assert response.status_code == 422
    problem = response.get_json()
    assert problem["detail"].startswith("The file has more than 2 rows")
    assert list(problem["errors"]) == ["file"]
    assert row_counts() == before


def test_a_csv_export_neutralises_formulas_and_imports_back_exactly(app, alice):
    made = {"=1+1": "@cmd", "+33 6": "-list item", "'quoted": "\ttabbed", "plain": "\rreturn"}
    for title, notes in made.items():
        alice.add_todo(title, notes=notes)
    job = alice.post("/api/v1/exports", json={"format": "csv"}).get_json()
    _run(app, job["id"])

    exported = alice.get(f"{job['url']}/result").data.decode()

    cells = [line.split(",")[1] for line in exported.split("\r\n")[1:] if line]
    assert sorted(cells) == sorted(["'=1+1", "'+33 6", "''quoted", "plain"])
    target = alice.post("/api/v1/lists", json={"name": "Copy"}).get_json()["id"]
    imported = post_import(alice, target, exported.encode()).get_json()
    _run(app, imported["id"])
    items = alice.get(f"/api/v1/todos?list_id={target}").get_json()["items"]
    assert {item["title"]: item["notes"] for item in items} == made
