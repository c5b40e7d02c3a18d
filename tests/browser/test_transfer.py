"""Exports and imports in a real browser, with a real Celery worker, in English and Chinese.

A list of 1,000 todos is exported: the panel shows at once, its bar reaches 100 % and the
file downloads with every row. The file is imported into another list while no worker
runs, so the page is loaded and waiting; a worker then starts, and the todos appear in the
page without a reload. A file with a bad row fails, and the panel names the row.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert, select

from tests.browser.conftest import LiveServer, register
from tests.workers import Worker
from todoscale import create_app
from todoscale.cache import invalidate
from todoscale.extensions import db
from todoscale.models import Todo, TodoList, User, new_id, utcnow
from todoscale.services.todos import list_scope

# The live server runs on a SQLite file of its own (conftest.py): the suite's database is not used.
pytestmark = [pytest.mark.services, pytest.mark.database_free]

DESKTOP = {"width": 1100, "height": 900}
PHONE = {"width": 375, "height": 812}
TODOS = 1_000

# What the pages say, in each language: the names a reader (and this test) finds things by.
WORDS = {
    "en": {
        "transfer": "Export and import",
        "export": "Export",
        "csv": "CSV (spreadsheets)",
        "json": "JSON",
        "download": "Download",
        "file": "Export file (CSV or JSON)",
        "import": "Import",
        "bad_row": "Row 2: title must not be empty",
        "list": "Big list",
        "copy": "Copy",
    },
    "zh": {
        "transfer": "导出和导入",
        "export": "导出",
        "csv": "CSV（电子表格）",  # noqa: RUF001
        "json": "JSON",
        "download": "下载",
        "file": "导出文件（CSV 或 JSON）",  # noqa: RUF001
        "import": "导入",
        "bad_row": "第 2 行：标题不能为空",  # noqa: RUF001
        "list": "大清单",
        "copy": "副本",
    },
}


@pytest.fixture(scope="module")
def worker_app(live_server: LiveServer) -> Iterator[Flask]:
    """An app on the live server's database and instance, for seeding and for the worker."""
    app = create_app(
        {
            "ENV_NAME": "testing",
            "INSTANCE_PATH": live_server.env["TODOSCALE_INSTANCE_PATH"],
            "SQLALCHEMY_DATABASE_URI": live_server.env["TODOSCALE_DATABASE_URL"],
        }
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class Workers:
    """Celery workers for the live server, started and stopped on demand (their events go
    to the server's clients through the local relay)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.started: list[Worker] = []

    def start(self) -> None:
        self.started.append(Worker(self.app, env={"TODOSCALE_REALTIME": "emit"}).start())

    def stop(self) -> None:
        """SIGKILL every worker: none holds a job when the test stops them."""
        for each in self.started:
            if each.running:
                each.kill()

    def close(self) -> None:
        self.stop()
        for each in self.started:
            each.close()


@pytest.fixture
def workers(worker_app: Flask) -> Iterator[Workers]:
    """Workers to start; every one is stopped at the end."""
    started = Workers(worker_app)
    yield started
    started.close()


def _new_list(page: Any, name: str) -> str:
    page.get_by_label("List name").fill(name)
    page.get_by_role("button", name="Create list").click()
    page.wait_for_url(re.compile(r"/lists/[0-9a-f]+$"))
    return str(page.url)


def _fill(app: Flask, username: str, list_name: str) -> None:
    """1,000 todos in the list, by bulk insert, oldest first (as an import writes them)."""
    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == username)).one()
        list_id = db.session.scalars(
            select(TodoList.id).where(TodoList.owner_id == user.id, TodoList.name == list_name)
        ).one()
        now = utcnow()
        rows = [
            {
                "id": new_id(),
                "list_id": list_id,
                "creator_id": user.id,
                "title": f"Item {n:04d}",
                "notes": f"note {n}",
                "completed": n % 3 == 0,
                "completed_at": now if n % 3 == 0 else None,
                "due_at": None,
                "created_at": now - timedelta(seconds=TODOS - n),
                "updated_at": now,
                "version": 1,
            }
            for n in range(TODOS)
        ]
        db.session.execute(insert(Todo.__table__), rows)
        db.session.commit()
        invalidate(list_scope(list_id))  # as the services do: the server's cached pages go
        db.session.remove()


def _mark(page: Any) -> None:
    page.evaluate("window.__sameDocument = true")


def _same_document(page: Any) -> bool:
    return bool(page.evaluate("window.__sameDocument === true"))


def _open_transfer(page: Any, words: dict[str, str]) -> None:
    page.locator("summary", has_text=words["transfer"]).click()


# Records every value the progress bar takes (and had), across the panel's updates.
WATCH_BAR = """() => {
  window.__bar = [];
  const record = (r) => {
    if (r.oldValue !== null) { window.__bar.push(Number(r.oldValue)); }
    window.__bar.push(Number(r.target.getAttribute("value")));
  };
  new MutationObserver((records) => records.forEach(record)).observe(
    document.querySelector(".job").parentNode,
    { subtree: true, attributes: true, attributeFilter: ["value"], attributeOldValue: true });
}"""


# The elements that reach past the right edge of the screen (for a failure's message).
WIDER_THAN_SCREEN = """Array.from(document.querySelectorAll("body *"))
  .filter((node) => node.getBoundingClientRect().right > window.innerWidth + 0.5)
  .map((node) => node.tagName + "." + node.className).slice(0, 8)"""


def _wait_live(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.locator("html")).to_have_attribute("data-live", "connected", timeout=10_000)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_export_1000_todos_then_import_them_live_and_a_bad_file_names_its_row(
    live_server, browser, workers, worker_app, screenshots, tmp_path: Path, language: str
):
    from playwright.sync_api import expect

    words = WORDS[language]
    base = live_server.url
    context = browser.new_context(viewport=DESKTOP, locale="en-US", accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    username = f"porter{language}"
    try:
        register(page, base, username)
        copy_url = _new_list(page, words["copy"])
        big_url = _new_list(page, words["list"])
        _fill(worker_app, username, words["list"])
        if language == "zh":
            page.goto(f"{base}/profile")
            page.get_by_role("combobox", name="Language").select_option("zh_Hans")
            page.get_by_role("button", name="Save language").click()
            expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
        workers.start()

        # Export: the panel at once, the bar to 100 % without a reload, then the file.
        page.goto(big_url)
        expect(page.locator("#todos .todo-title").first).to_have_text(f"Item {TODOS - 1:04d}")
        _wait_live(page)
        _open_transfer(page, words)
        page.get_by_role("radio", name=words["json" if language == "zh" else "csv"]).check()
        page.get_by_role("button", name=words["export"], exact=True).click()
        page.wait_for_url(re.compile(r"\?job="))
        bar = page.get_by_role("progressbar")
        expect(bar).to_be_visible()
        _mark(page)
        expect(bar).to_have_attribute("value", "100", timeout=30_000)
        download_link = page.get_by_role("link", name=re.compile(words["download"]))
        expect(download_link).to_be_visible()
        assert _same_document(page)
        page.screenshot(path=str(screenshots / f"export-{language}.png"), full_page=True)
        with page.expect_download() as info:
            download_link.click()
        download = info.value
        assert download.suggested_filename.startswith(words["list"].replace(" ", "-"))
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        titles = _titles(saved.read_bytes(), language)
        assert titles == [f"Item {n:04d}" for n in range(TODOS)]

        # Import with no worker running: the page waits, then the todos arrive live.
        workers.stop()
        page.goto(copy_url)
        _wait_live(page)
        expect(page.locator("#todos-empty")).to_be_visible()
        _open_transfer(page, words)
        page.get_by_label(words["file"]).set_input_files(str(saved))
        page.get_by_role("button", name=words["import"], exact=True).click()
        page.wait_for_url(re.compile(r"\?job="))
        expect(page.locator(".job")).to_have_attribute("data-status", "queued")
        expect(page.locator("#todos-empty")).to_be_visible()
        _wait_live(page)
        _mark(page)
        page.evaluate(WATCH_BAR)
        workers.start()
        expect(page.get_by_role("progressbar")).to_have_attribute("value", "100", timeout=30_000)
        moved = page.evaluate("window.__bar")
        assert any(0 < value < 100 for value in moved), moved  # it moved on the way there
        expect(page.locator("#todos .todo")).to_have_count(10, timeout=10_000)
        expect(page.locator("#todos .todo-title").first).to_have_text(f"Item {TODOS - 1:04d}")
        expect(page.locator('.list-nav a[aria-current="page"] .count')).to_have_text(str(TODOS))
        assert _same_document(page)
        page.screenshot(path=str(screenshots / f"import-{language}.png"), full_page=True)

        # A file with a bad row: nothing imported, and the panel names the row.
        bad = tmp_path / "bad.csv"
        bad.write_text(
            "title,notes\r\nfine,\r\n   ,blank title\r\nalso fine,\r\n", encoding="utf-8"
        )
        _open_transfer(page, words)
        page.get_by_label(words["file"]).set_input_files(str(bad))
        page.get_by_role("button", name=words["import"], exact=True).click()
        page.wait_for_url(re.compile(r"\?job="))
        expect(page.get_by_role("alert")).to_contain_text(words["bad_row"], timeout=30_000)
        expect(page.locator('.list-nav a[aria-current="page"] .count')).to_have_text(str(TODOS))
        page.screenshot(path=str(screenshots / f"import-bad-row-{language}.png"), full_page=True)

        # On a phone: nothing wider than the screen, the jobs page and the search results too.
        page.set_viewport_size(PHONE)
        for url in (page.url, f"{base}/profile/jobs", f"{base}/search?q=item+0999"):
            page.goto(url)
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], (
                url,
                page.evaluate(WIDER_THAN_SCREEN),
            )
        expect(page.locator(".search-results mark")).to_have_text(["Item", "0999"] * 2)
        page.screenshot(path=str(screenshots / f"search-phone-{language}.png"), full_page=True)
        page.goto(f"{base}/profile/jobs")
        page.screenshot(path=str(screenshots / f"jobs-phone-{language}.png"), full_page=True)
        assert errors == []
    finally:
        context.close()


def _titles(data: bytes, language: str) -> list[str]:
    if language == "zh":
        return [row["title"] for row in json.loads(data)["todos"]]
    return [row["title"] for row in csv.DictReader(io.StringIO(data.decode("utf-8")))]


def test_without_javascript_the_job_page_refreshes_until_done_and_search_works(
    live_server, browser, workers, screenshots, tmp_path: Path
):
    from playwright.sync_api import expect

    base = live_server.url
    context = browser.new_context(
        viewport=DESKTOP, locale="en-US", java_script_enabled=False, accept_downloads=True
    )
    page = context.new_page()
    try:
        register(page, base, "plainpage")
        page.get_by_label("Title").fill("Water the <b>ficus</b>")
        with page.expect_navigation():
            page.get_by_label("Title").press("Enter")

        # From the profile, every list: the job page reloads itself until the file is ready.
        page.goto(f"{base}/profile")
        page.get_by_role("radio", name="JSON").check()
        page.get_by_role("button", name="Export", exact=True).click()
        page.wait_for_url(re.compile(r"/jobs/[0-9a-f]+$"))
        expect(page.locator(".job")).to_have_attribute("data-status", "queued")
        workers.start()
        download_link = page.get_by_role("link", name=re.compile("Download"))
        expect(download_link).to_be_visible(timeout=30_000)
        expect(page.get_by_role("progressbar")).to_have_attribute("value", "100")
        with page.expect_download() as info:
            download_link.click()
        saved = tmp_path / "all.json"
        info.value.save_as(saved)
        assert [row["title"] for row in json.loads(saved.read_bytes())["todos"]] == [
            "Water the <b>ficus</b>"
        ]
        page.get_by_role("link", name="Your exports and imports").click()
        expect(
            page.get_by_role("row", name=re.compile("Export of every list as JSON"))
        ).to_contain_text("Done")

        # The search box of the header: the match marked, the rest shown as text.
        page.get_by_role("searchbox", name="Search todos").fill("FICUS")
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page.locator(".search-results .todo-title")).to_have_text("Water the <b>ficus</b>")
        expect(page.locator(".search-results mark")).to_have_text("ficus")
        page.screenshot(path=str(screenshots / "search-no-js.png"), full_page=True)
    finally:
        context.close()
