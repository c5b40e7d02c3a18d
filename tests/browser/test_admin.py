"""The admin console in a real browser, in English and in Chinese, down to a flame graph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.conftest import register
from tests.browser.test_ui import DESKTOP

# The live server runs on a SQLite file of its own (conftest.py): the suite's database is not used.
pytestmark = [pytest.mark.services, pytest.mark.database_free]

PAGES = ["/admin/", "/admin/slow", "/admin/jobs", "/admin/live", "/admin/processes",
         "/admin/profiles", "/admin/memory"]  # fmt: skip


def _grant(live_server, username: str) -> None:
    todoscale = Path(sys.executable).with_name("todoscale")
    subprocess.run([str(todoscale), "admin", "grant", username], env=live_server.env,
                   check=True, capture_output=True, timeout=120)  # fmt: skip


def test_an_admin_walks_the_console_in_both_languages(live_server, browser, screenshots):
    from playwright.sync_api import expect

    base = str(live_server)
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    try:
        page = context.new_page()
        register(page, base, "chief")
        assert page.goto(f"{base}/admin/").status == 404
        _grant(live_server, "chief")
        for path in PAGES:
            assert page.goto(f"{base}{path}").status == 200, path
            name = path.strip("/").replace("/", "-") or "admin"
            page.screenshot(path=str(screenshots / f"{name}-en.png"), full_page=True)
        expect(page.locator("h1")).to_have_text("Memory snapshots")

        page.goto(f"{base}/admin/profiles")
        page.get_by_label("Endpoint").select_option("/")
        page.get_by_label("Requests").fill("2")
        page.get_by_role("button", name="Profile the next requests").click()
        expect(page.locator("#armed-order")).to_be_visible()
        # The control thread reads the order within a second; the next visits are profiled.
        for _ in range(20):
            page.goto(f"{base}/")
            page.goto(f"{base}/admin/profiles")
            if page.locator("#profile-reports .flame-link").count() >= 2:
                break
            page.wait_for_timeout(250)
        assert page.locator("#profile-reports .flame-link").count() == 2
        page.screenshot(path=str(screenshots / "profiles-en.png"), full_page=True)
        page.locator("#profile-reports .flame-link").first.click()
        page.wait_for_url("**/admin/profiles/viewer/index.html#profileURL=*")
        expect(page.locator("canvas").first).to_be_visible(timeout=15_000)
        page.wait_for_timeout(500)  # let speedscope draw before the picture
        page.screenshot(path=str(screenshots / "flame-graph.png"))
    finally:
        context.close()

    chinese = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    try:
        page = chinese.new_page()
        page.goto(f"{base}/login")
        page.locator("#username").fill("chief")
        page.locator("#password").fill("correct horse battery")
        with page.expect_navigation():
            page.locator("#password").press("Enter")
        for path in PAGES:
            assert page.goto(f"{base}{path}").status == 200, path
            name = path.strip("/").replace("/", "-") or "admin"
            page.screenshot(path=str(screenshots / f"{name}-zh.png"), full_page=True)
        page.goto(f"{base}/admin/")
        expect(page.locator("h1")).to_have_text("各端点的请求")
    finally:
        chinese.close()
