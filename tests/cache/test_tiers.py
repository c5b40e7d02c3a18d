"""cache/tiers.py: the shared tier holds JSON only (nothing that unpickles, no password hash),
and every value comes back from it exactly as it went in."""

from __future__ import annotations

import hashlib
import pickle
import uuid
from datetime import UTC, datetime

import orjson
import pytest
import redis
from cryptography.fernet import Fernet

from tests.conftest import Account
from todoscale.cache import AS_IS, Codec
from todoscale.cache.tiers import ABSENT, _shared_get, _shared_set
from todoscale.services import todos

WHEN = datetime(2026, 12, 1, 9, 15, 30, 123456, tzinfo=UTC)
ROW = todos.TodoRow("a" * 32, "b" * 32, "Pay rent", "notes", True, WHEN, None, WHEN, WHEN, 3)


def _shared_apps(cached_apps, database_url, **overrides):
    if database_url.startswith("sqlite"):
        pytest.skip("the shared tier serves server databases only; the PostgreSQL run checks it")
    return cached_apps(2, **overrides)


def _shared_values(app, *needles: str) -> dict[str, bytes]:
    """Every value of the shared tier whose key names one of `needles`."""
    client = redis.Redis.from_url(app.config["REDIS_URL"])
    keys = [
        key for key in client.scan_iter("todoscale:v:*") if any(n in key.decode() for n in needles)
    ]
    return {key.decode(): client.get(key) for key in keys}


def _unpickles(raw: bytes) -> bool:
    for candidate in (raw, raw.removeprefix(b"!")):  # cachelib prefixes its pickles with "!"
        try:
            pickle.loads(candidate)  # the point: it must not load
        except Exception:  # noqa: BLE001 (any failure to unpickle is what we want)
            continue
        return True
    return False


def test_the_shared_tier_holds_json_and_no_password_hash(cached_apps, database_url):
    one, _ = _shared_apps(cached_apps, database_url)
    owner = Account(one.test_client(), f"own{uuid.uuid4().hex[:8]}")
    todo = owner.post("/api/v1/todos", json={"title": "t"}).get_json()
    for path in ("/api/v1/users/me", "/api/v1/todos", f"/api/v1/todos/{todo['id']}"):
        assert owner.get(path).status_code == 200
    digest = hashlib.sha256(owner.token.encode()).hexdigest()

    values = _shared_values(one, owner.user["id"], digest)

    kinds = {key.split(":")[2] for key in values}
    assert kinds >= {"token", "lists", "page", "todo"}, values.keys()
    assert [key for key, raw in values.items() if _unpickles(raw)] == []
    assert [key for key, raw in values.items() if b"$argon2" in raw] == []
    for raw in values.values():
        orjson.loads(raw)  # JSON, every one


def test_another_instance_reads_back_exactly_what_the_first_cached(cached_apps, database_url):
    one, two = _shared_apps(cached_apps, database_url)
    owner = Account(one.test_client(), f"own{uuid.uuid4().hex[:8]}")
    due = {"title": "due", "due_at": "2026-12-24T18:30:00.000001Z", "notes": "ünïcode ✓"}
    todo = owner.post("/api/v1/todos", json=due).get_json()
    paths = ("/api/v1/users/me", "/api/v1/todos", f"/api/v1/todos/{todo['id']}")
    first = [owner.get(path).get_data() for path in paths]

    # The other instance has an empty local tier: everything comes from Redis.
    other = two.test_client()
    second = [other.get(path, headers=owner.headers).get_data() for path in paths]

    assert second == first


def test_with_encryption_on_no_note_is_in_redis_in_clear(cached_apps, database_url):
    key = Fernet.generate_key().decode()
    one, two = _shared_apps(cached_apps, database_url, ENCRYPTION_KEYS=[key])
    owner = Account(one.test_client(), f"own{uuid.uuid4().hex[:8]}")
    todo = owner.post("/api/v1/todos", json={"title": "t", "notes": "door code 4711"}).get_json()
    paths = ("/api/v1/todos", f"/api/v1/todos/{todo['id']}")
    first = [owner.get(path).get_json() for path in paths]

    values = _shared_values(one, owner.user["id"])

    assert {key.split(":")[2] for key in values} >= {"page", "todo"}
    assert [key for key, raw in values.items() if b"4711" in raw] == []
    other = two.test_client()
    assert [other.get(path, headers=owner.headers).get_json() for path in paths] == first
    assert first[1]["notes"] == "door code 4711"


@pytest.mark.parametrize(
    ("value", "codec"),
    [
        (ROW, todos._ROW_CODEC),
        (ROW._replace(completed_at=None, due_at=WHEN.replace(microsecond=0)), todos._ROW_CODEC),
        (todos.Page([ROW, ROW._replace(id="c" * 32)], "cursor"), todos._PAGE_CODEC),
        (todos.Page([], None), todos._PAGE_CODEC),
        (["x", "y"], AS_IS),
    ],
)
def test_values_round_trip_through_json_exactly(value, codec: Codec):
    back = codec.load(orjson.loads(orjson.dumps(codec.dump(value))))
    assert back == value
    for each in back.items if isinstance(back, todos.Page) else [back]:
        if isinstance(each, todos.TodoRow):
            assert each.created_at.tzinfo is not None and each.created_at.utcoffset().seconds == 0


def test_a_cached_nothing_is_stored_as_json_null(cached_apps, database_url):
    one, _ = _shared_apps(cached_apps, database_url)
    key = f"todoscale:v:test:{uuid.uuid4().hex}"
    with one.app_context():
        _shared_set(key, ABSENT, AS_IS)
        assert _shared_get(key, AS_IS) == ABSENT
        assert _shared_get(key + "-missing", AS_IS) is None
    assert redis.Redis.from_url(one.config["REDIS_URL"]).get(key) == b"null"
