"""Redis stopped mid-test: every request is still answered (from the database), with no
server error, and what is written during the outage is read back correctly."""

from __future__ import annotations

from tests.conftest import Account
from todoscale import create_app
from todoscale.extensions import db


def test_a_redis_outage_costs_no_request_and_no_stale_read(
    app, database_url, tmp_path, redis_server
):
    # With a server database Redis holds the cache's stamps and shared tier; with SQLite it
    # still holds the rate limits. Either way, Redis going away must cost no request.
    outage_app = create_app(
        {
            "ENV_NAME": "testing",
            "INSTANCE_PATH": str(tmp_path),
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_server.url,
            "RATE_LIMITS_ENABLED": True,
            "API_WRITE_LIMIT": "1000 per minute",
        }
    )
    try:
        client = outage_app.test_client()
        alice = Account(client, "alice")
        kept = alice.add_todo("before the outage")
        assert [t["title"] for t in alice.get("/api/v1/todos").get_json()["items"]] == [
            "before the outage"
        ]  # cached now

        redis_server.stop()
        statuses = []
        added = alice.add_todo("during the outage")
        statuses.append(alice.patch(f"/api/v1/todos/{kept['id']}", json={"completed": True}))
        page = alice.get("/api/v1/todos")
        single = alice.get(f"/api/v1/todos/{kept['id']}")
        statuses += [page, single, alice.get("/api/v1/users/me"), alice.get("/api/v1/lists")]
        ready = client.get("/readyz")

        assert all(response.status_code < 500 for response in statuses)
        assert [t["title"] for t in page.get_json()["items"]] == [
            "during the outage",
            "before the outage",
        ]
        assert single.get_json()["completed"] is True
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["redis"] != "ok"

        redis_server.start()  # back, and empty, as after a restart without persistence
        after = alice.get("/api/v1/todos")
        assert after.status_code == 200
        assert [t["id"] for t in after.get_json()["items"]] == [added["id"], kept["id"]]
    finally:
        with outage_app.app_context():
            db.session.remove()
            db.engine.dispose()
