"""The web UI in a real browser: the journey of the issue, from registering to logging out."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import PASSWORD, register

# The live server runs on a SQLite file of its own (conftest.py): the suite's database is not used.
pytestmark = [pytest.mark.services, pytest.mark.database_free]

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 812}


def _add(page: Any, title: str) -> None:
    page.get_by_label("Title").fill(title)
    with page.expect_navigation():
        page.get_by_label("Title").press("Enter")


def _follow(page: Any, name: str) -> None:
    """Click the link `name` and wait until the page it leads to has loaded (a click waits
    only for the navigation to begin: on a busy machine the old page was read, empty)."""
    with page.expect_navigation():
        page.get_by_role("link", name=name).click()


def _titles(page: Any) -> list[str]:
    return [text.strip() for text in page.locator(".todo-title").all_inner_texts()]


def test_the_journey(live_server, browser, screenshots):
    from playwright.sync_api import expect

    base = live_server
    alice_context = browser.new_context(viewport=DESKTOP, locale="en-US")
    bob_context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = alice_context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        # Register, log out, log in again.
        register(page, base, "alice")
        expect(page.get_by_role("heading", level=1)).to_have_text("Inbox")
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(f"{base}/login")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator(".flash")).to_have_text("Welcome back, alice.")

        # Three todos, newest first; complete one in place (the script saves it, no reload).
        for title in ("Water the plants", "Call the bank", "Book the train"):
            _add(page, title)
        assert _titles(page) == ["Book the train", "Call the bank", "Water the plants"]
        check = page.get_by_role("button", name="Done: Call the bank")
        url = page.url
        check.click()
        expect(check).to_have_attribute("aria-pressed", "true")
        expect(page.locator(".todo.is-done .todo-title")).to_have_text("Call the bank")
        assert page.url == url
        page.reload()
        expect(page.get_by_role("button", name="Done: Call the bank")).to_have_attribute(
            "aria-pressed", "true"
        )

        # What people type is shown as text, never run.
        _add(page, "<script>alert(1)</script>")
        expect(page.locator(".todo-title").first).to_have_text("<script>alert(1)</script>")
        page.reload()
        assert dialogs == []

        # English screenshots of the main page, desktop and phone.
        page.screenshot(path=str(screenshots / "home-en-desktop.png"), full_page=True)
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(screenshots / "home-en-phone.png"), full_page=True)
        page.set_viewport_size(DESKTOP)

        # A list of 25 todos, paged by ten: older, older, then newer.
        page.get_by_label("List name").fill("Chores")
        page.get_by_role("button", name="Create list").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Chores")
        for n in range(1, 26):
            _add(page, f"Chore {n:02}")
        assert _titles(page) == [f"Chore {n:02}" for n in range(25, 15, -1)]
        _follow(page, "Older")
        assert _titles(page) == [f"Chore {n:02}" for n in range(15, 5, -1)]
        _follow(page, "Older")
        assert _titles(page) == [f"Chore {n:02}" for n in range(5, 0, -1)]
        expect(page.get_by_role("link", name="Older")).to_have_count(0)
        _follow(page, "Newer")
        assert _titles(page) == [f"Chore {n:02}" for n in range(15, 5, -1)]

        # Share it with bob, who sees it in his own browser.
        bob = bob_context.new_page()
        register(bob, base, "bob")
        page.get_by_role("link", name="Members and settings").click()
        page.get_by_label("Username").fill("bob")
        page.get_by_role("button", name="Share").click()
        expect(page.locator(".members")).to_contain_text("bob")
        bob.reload()
        bob.get_by_role("link", name=re.compile("Chores")).click()
        expect(bob.get_by_role("heading", level=1)).to_have_text("Chores")
        expect(bob.locator(".todo-title").first).to_have_text("Chore 25")
        expect(bob.locator(".list-head .meta")).to_contain_text("Shared by alice")

        # Switch to Chinese: the pages change language.
        page.get_by_role("link", name="alice").click()
        page.get_by_role("combobox", name="Language").select_option("zh_Hans")
        page.get_by_role("button", name="Save language").click()
        expect(page.locator(".flash")).to_have_text("语言已保存。")
        expect(page.get_by_role("heading", level=1)).to_have_text("个人资料")
        page.get_by_role("link", name="todoscale").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("收件箱")
        expect(page.get_by_role("button", name="退出登录")).to_be_visible()
        page.screenshot(path=str(screenshots / "home-zh-desktop.png"), full_page=True)
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(screenshots / "home-zh-phone.png"), full_page=True)
        page.set_viewport_size(DESKTOP)

        # Log out: the pages need a login again.
        page.get_by_role("button", name="退出登录").click()
        page.wait_for_url(f"{base}/login")
        page.goto(f"{base}/")
        assert page.url.startswith(f"{base}/login")
        assert dialogs == []
    finally:
        alice_context.close()
        bob_context.close()
