"""The N+1 guard: what a list endpoint costs in SQL statements does not grow with its page.

Counted by the listener the metric uses (`todoscale_db_statements_total` per route).
"""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.web.conftest import WebUser
from todoscale.extensions import db
from todoscale.models import Notification


def _statements(rule: str, request) -> float:
    def now() -> float:
        return REGISTRY.get_sample_value("todoscale_db_statements_total", {"endpoint": rule}) or 0

    before = now()
    response = request()
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return now() - before


def test_todos_page_of_1_and_of_50_cost_the_same_statements(alice):
    for number in range(50):
        alice.add_todo(f"todo {number}")
    alice.get("/api/v1/todos?limit=2")  # cached from here on, for both: token, memberships
    one = _statements("/api/v1/todos", lambda: alice.get("/api/v1/todos?limit=1&completed=false"))
    fifty = _statements(
        "/api/v1/todos", lambda: alice.get("/api/v1/todos?limit=50&completed=false")
    )
    assert one == fifty >= 1


def test_lists_of_1_and_of_10_shared_lists_cost_the_same_statements(alice, make_account):
    alice.get("/api/v1/users/me")
    one = _statements("/api/v1/lists", lambda: alice.get("/api/v1/lists"))
    for number in range(9):
        list_id = alice.post("/api/v1/lists", json={"name": f"list {number}"}).get_json()["id"]
        friend = make_account()
        alice.post(f"/api/v1/lists/{list_id}/members", json={"username": friend.username})
        alice.add_todo("in it", list_id=list_id)
    alice.get("/api/v1/users/me")
    ten = _statements("/api/v1/lists", lambda: alice.get("/api/v1/lists"))
    assert one == ten >= 1


def test_web_pages_of_1_and_of_10_items_cost_the_same_statements(app):
    ann = WebUser(app, "annq")
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "first")
    counts_small = _web_counts(ann, inbox)
    for number in range(9):
        ann.add_todo(inbox, f"more {number}")
    with app.app_context():
        user = ann.user()
        db.session.add_all(
            [Notification(user_id=user.id, title=f"n{n}", list_id=inbox) for n in range(10)]
        )
        db.session.commit()
    assert _web_counts(ann, inbox) == counts_small
    assert all(count >= 1 for count in counts_small)


def _web_counts(user: WebUser, inbox: str) -> list[float]:
    user.get("/profile")  # the same session state before each measured page
    pages = [("/", "/"), ("/lists/<list_id>", f"/lists/{inbox}"),
             ("/notifications", "/notifications")]  # fmt: skip
    counts = []
    for rule, path in pages:
        user.get("/profile")
        counts.append(_statements(rule, lambda path=path: user.get(path)))
    return counts
