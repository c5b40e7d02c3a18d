"""Live updates in real browsers: two members of a shared list, each in a browser context.

A todo added in one appears in the other within a second, without a reload; changes and
deletes follow; a reminder made by another process lights the badge.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from tests.browser.conftest import register
from todoscale import create_app
from todoscale.extensions import db
from todoscale.models import Todo, User, utcnow
from todoscale.services import todos
from todoscale.services.reminders import send_due_reminders

# The live server runs on a SQLite file of its own (conftest.py): the suite's database is not used.
pytestmark = [pytest.mark.services, pytest.mark.database_free]

DESKTOP = {"width": 1100, "height": 760}


def _live(page: Any) -> None:
    """Wait until the page's Socket.IO connection is up, and mark the page to detect reloads."""
    from playwright.sync_api import expect

    expect(page.locator("html")).to_have_attribute("data-live", "connected", timeout=10_000)
    # Upgraded from long-polling to a WebSocket: the page's CSP (connect-src) allows it.
    # (Polled from here: wait_for_function evaluates strings, which the page's CSP forbids.)
    transport = "window.todoscale.socket.io.engine.transport.name"
    deadline = time.monotonic() + 10
    while page.evaluate(transport) != "websocket":
        assert time.monotonic() < deadline, page.evaluate(transport)
        time.sleep(0.05)
    page.evaluate("window.__sameDocument = true")


def _same_document(page: Any) -> bool:
    return bool(page.evaluate("window.__sameDocument === true"))


def test_a_todo_added_by_one_member_appears_for_the_other_without_reload(
    live_server, browser, screenshots
):
    from playwright.sync_api import expect

    base = live_server.url
    contexts = [browser.new_context(viewport=DESKTOP, locale="en-US") for _ in range(2)]
    alice, bob = (context.new_page() for context in contexts)
    errors: list[str] = []
    for page in (alice, bob):
        page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        register(alice, base, "alice")
        register(bob, base, "bob")
        alice.get_by_label("List name").fill("Groceries")
        alice.get_by_role("button", name="Create list").click()
        expect(alice.get_by_role("heading", level=1)).to_have_text("Groceries")
        list_url = alice.url
        alice.get_by_role("link", name="Members and settings").click()
        alice.get_by_label("Username").fill("bob")
        alice.get_by_role("button", name="Share").click()
        expect(alice.locator(".members")).to_contain_text("bob")
        alice.goto(list_url)
        bob.goto(list_url)
        expect(bob.locator("#todos-empty")).to_be_visible()
        _live(alice)
        _live(bob)

        # Added in Alice's browser: in Bob's, on top, within a second, no reload.
        # The POST has committed once Alice's next page loads: from then on, one second.
        alice.get_by_label("Title").fill("Oat milk <2 l>")
        with alice.expect_navigation():
            alice.get_by_label("Title").press("Enter")
        committed = time.monotonic()
        expect(bob.locator(".todo-title").first).to_have_text("Oat milk <2 l>", timeout=1_000)
        print(f"live update seen {time.monotonic() - committed:.3f} s after the add returned")
        expect(bob.locator("#todos-empty")).to_be_hidden()
        expect(bob.get_by_role("button", name="Done: Oat milk <2 l>")).to_be_visible()
        assert _same_document(bob)

        # A second one goes on top; Bob ticks the first in place, and Alice sees it.
        _live(alice)
        alice.get_by_label("Title").fill("Bread")
        with alice.expect_navigation():
            alice.get_by_label("Title").press("Enter")
        expect(bob.locator(".todo-title")).to_have_text(["Bread", "Oat milk <2 l>"])
        _live(alice)
        bob.get_by_role("button", name="Done: Oat milk <2 l>").click()
        expect(alice.locator(".todo.is-done .todo-title")).to_have_text("Oat milk <2 l>")
        assert _same_document(alice)
        bob.screenshot(path=str(screenshots / "live-bob.png"), full_page=True)
        alice.screenshot(path=str(screenshots / "live-alice.png"), full_page=True)

        # The live item works like a rendered one: Bob deletes "Bread" with its form.
        with bob.expect_navigation():
            bob.get_by_role("button", name="Delete: Bread").click()
        expect(alice.locator(".todo-title")).to_have_text(["Oat milk <2 l>"])
        assert _same_document(alice)
        assert errors == []
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def worker_app(live_server) -> Iterator[Flask]:
    """This test process playing a Celery worker: the server's database and instance,
    emit-only (its events reach the server through the relay)."""
    app = create_app(
        {
            "ENV_NAME": "testing",
            "INSTANCE_PATH": live_server.env["TODOSCALE_INSTANCE_PATH"],
            "SQLALCHEMY_DATABASE_URI": live_server.env["TODOSCALE_DATABASE_URL"],
            "REALTIME": "emit",
        }
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_reminder_sent_by_another_process_lights_the_badge(
    live_server, browser, screenshots, worker_app
):
    from playwright.sync_api import expect

    base = live_server.url
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    try:
        register(page, base, "carol")
        _live(page)
        expect(page.locator("#notification-count")).to_be_hidden()
        with worker_app.app_context():
            carol = db.session.query(User).filter_by(username="carol").one()
            todos.create_todo(carol, title="Call mum", due_at=utcnow() + timedelta(minutes=5))
            assert send_due_reminders() == 1
        expect(page.locator(".todo-title").first).to_have_text("Call mum", timeout=10_000)
        expect(page.locator("#notification-count")).to_have_text("1", timeout=10_000)
        expect(page.locator("#notification-count")).to_be_visible()
        assert _same_document(page)
        page.screenshot(path=str(screenshots / "live-badge.png"))
        page.get_by_role("link", name="Notifications").click()
        expect(page.locator(".notification.is-unread")).to_contain_text("Call mum")
    finally:
        context.close()


def test_times_follow_the_browsers_time_zone_in_pages_forms_and_live_updates(
    live_server, browser, screenshots, worker_app
):
    """A browser in New York: the server learns its zone from the script, shows and takes
    times in it, keeps a due time through an edit, and live updates match the page."""
    from playwright.sync_api import expect

    base = live_server.url
    context = browser.new_context(viewport=DESKTOP, locale="en-US", timezone_id="America/New_York")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        register(page, base, "nina")
        expect(page.locator("html")).to_have_attribute("data-time-zone", "America/New_York")
        expect(page.locator(".zone-note")).to_have_text(
            "Times are in United States (New York) Time, your browser's time zone."
        )
        page.get_by_text("Notes and due date").click()
        page.get_by_label("Title").fill("Dentist")
        page.get_by_label("Due").fill("2026-12-24T09:30")
        with page.expect_navigation():
            page.get_by_role("button", name="Add").click()
        due = page.locator(".todo .due time").first
        expect(due).to_have_text("Due Dec 24, 2026, 9:30:00\u202fAM")
        expect(due).to_have_attribute("datetime", "2026-12-24T14:30:00+00:00")

        # Editing the title keeps the due time, shown in the browser's zone.
        page.get_by_role("link", name="Edit: Dentist").click()
        expect(page.get_by_label("Due")).to_have_value("2026-12-24T09:30")
        page.get_by_label("Title").fill("Dentist, bring the card")
        with page.expect_navigation():
            page.get_by_role("button", name="Save").click()
        expect(page.locator(".todo .due time").first).to_have_text(
            "Due Dec 24, 2026, 9:30:00\u202fAM"
        )

        # Changes made elsewhere arrive live, their times in the same zone as the page's.
        _live(page)
        with worker_app.app_context():
            nina = db.session.query(User).filter_by(username="nina").one()
            later = todos.create_todo(
                nina, title="Flight", due_at=datetime(2026, 12, 26, 20, 0, tzinfo=UTC)
            ).id
            first = db.session.query(Todo).filter_by(title="Dentist, bring the card").one().id
            todos.edit_todo(nina, first, {"due_at": datetime(2026, 12, 24, 16, 0, tzinfo=UTC)})
        expect(page.locator(".todo-title").first).to_have_text("Flight")
        expect(page.locator(f"#todo-{later} .due time")).to_have_text(
            "Due Dec 26, 2026, 3:00:00\u202fPM"
        )
        expect(page.locator(f"#todo-{first} .due time")).to_have_text(
            "Due Dec 24, 2026, 11:00:00\u202fAM"
        )
        assert _same_document(page)
        page.screenshot(path=str(screenshots / "live-time-zone.png"), full_page=True)
        assert errors == []
    finally:
        context.close()
