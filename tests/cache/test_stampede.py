"""Stampede and penetration: a changed value is computed once for all waiting requests,
and lookups of what does not exist do not reach the database every time."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import event

from tests.conftest import Account
from todoscale.cache import invalidate
from todoscale.extensions import db
from todoscale.services.todos import list_scope


class QueryCounter:
    """Counts the statements each app's engine runs that contain `needle` (each made to
    take `delay` seconds: a stampede hurts when recomputing is slow)."""

    def __init__(self, apps, needle: str, delay: float = 0.0) -> None:
        self.needle = needle
        self.delay = delay
        self.seen = 0
        self._lock = threading.Lock()
        for each in apps:
            with each.app_context():
                event.listen(db.engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, conn, cursor, statement, *args) -> None:
        if self.needle in statement:
            with self._lock:
                self.seen += 1
            time.sleep(self.delay)


def _instances(cached_apps, database_url):
    # One host without Redis shares stamps, not values: each process computes its own.
    # With Redis the shared tier lets every process (and host) use one computation.
    return cached_apps(1 if database_url.startswith("sqlite") else 2)


def test_200_concurrent_requests_on_an_expired_page_run_one_query(cached_apps, database_url):
    apps = _instances(cached_apps, database_url)
    alice = Account(apps[0].test_client(), "alice")
    for n in range(15):
        alice.add_todo(f"todo {n}")
    headers = alice.headers
    clients = [each.test_client() for each in apps]
    assert clients[0].get("/api/v1/todos", headers=headers).status_code == 200  # warm
    for client in clients:
        client.get("/api/v1/users/me", headers=headers)  # token lookups cached everywhere
        client.get("/api/v1/todos?limit=5", headers=headers)
    with apps[0].app_context():
        invalidate(list_scope(alice.inbox_id))  # the hot page is now stale everywhere
    pages = QueryCounter(apps, "ORDER BY todos.created_at DESC", delay=0.1)

    def read(n: int) -> int:
        response = clients[n % len(clients)].get("/api/v1/todos", headers=headers)
        return response.status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(read, range(200)))

    assert statuses == [200] * 200
    assert pages.seen == 1


def test_lookups_of_a_missing_todo_reach_the_database_once(cached_apps):
    client = cached_apps(1)[0].test_client()
    alice = Account(client, "alice")
    lookups = QueryCounter([client.application], "WHERE todos.id =")

    for _ in range(50):
        assert alice.get("/api/v1/todos/0000000000000000000000000000dead").status_code == 404

    assert lookups.seen == 1


def test_a_missing_todo_that_becomes_visible_is_seen_at_once(cached_apps):
    one, two = (each.test_client() for each in cached_apps(2))
    alice, bob = Account(one, "alice"), Account(one, "bob")
    todo = alice.add_todo("secret")
    bob_two = {"Authorization": f"Bearer {bob.token}"}
    assert two.get(f"/api/v1/todos/{todo['id']}", headers=bob_two).status_code == 404  # cached

    alice.post(f"/api/v1/lists/{alice.inbox_id}/members", json={"username": "bob"})

    assert two.get(f"/api/v1/todos/{todo['id']}", headers=bob_two).status_code == 200


def test_made_up_tokens_reach_the_database_once(cached_apps):
    client = cached_apps(1)[0].test_client()
    lookups = QueryCounter([client.application], "api_tokens.token_hash =")

    made_up = {"Authorization": f"Bearer made-up-{uuid.uuid4().hex}"}  # Redis outlives runs
    for _ in range(50):
        response = client.get("/api/v1/users/me", headers=made_up)
        assert response.status_code == 401

    assert lookups.seen == 1
