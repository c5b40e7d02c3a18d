"""The local cache: values valid only while their scope's shared stamp is unchanged."""

from __future__ import annotations

import time

from todoscale.cache import LocalCache, SharedStamps


def test_a_put_value_is_served_until_its_scope_is_bumped(tmp_path):
    cache = LocalCache(SharedStamps(str(tmp_path / "stamps")))
    cache.put("lists:u1", ["a"], cache.stamps("member:u1"))
    assert cache.get("lists:u1") == ["a"]

    cache.bump("member:u1")

    assert cache.get("lists:u1") is None


def test_a_bump_in_another_process_invalidates_here(tmp_path):
    # Two mappings of one file: exactly what two gunicorn workers of one instance hold.
    here = LocalCache(SharedStamps(str(tmp_path / "stamps")))
    elsewhere = SharedStamps(str(tmp_path / "stamps"))
    here.put("token:x", {"id": "u1"}, here.stamps("auth"))

    elsewhere.bump("auth")

    assert here.get("token:x") is None


def test_a_value_computed_before_a_bump_is_never_served(tmp_path):
    cache = LocalCache(SharedStamps(str(tmp_path / "stamps")))
    stamps = cache.stamps("auth")  # read, then the database is queried...
    cache.bump("auth")  # ...while another request commits a revocation and bumps
    cache.put("token:x", {"id": "u1"}, stamps)  # the stale value arrives

    assert cache.get("token:x") is None


def test_other_scopes_are_untouched_by_a_bump(tmp_path):
    cache = LocalCache(SharedStamps(str(tmp_path / "stamps")))
    cache.put("lists:u1", ["a"], cache.stamps("member:u1"))
    cache.put("lists:u2", ["b"], cache.stamps("member:u2"))

    cache.bump("member:u2")

    assert cache.get("lists:u1") == ["a"]
    assert cache.get("lists:u2") is None


def test_a_value_depending_on_several_scopes_dies_with_any_of_them(tmp_path):
    cache = LocalCache(SharedStamps(str(tmp_path / "stamps")))
    cache.put("page:u1", ["t1"], cache.stamps("member:u1", "list:a", "list:b"))
    assert cache.get("page:u1") == ["t1"]

    cache.bump("list:b")

    assert cache.get("page:u1") is None


def test_entries_expire_after_the_ttl(tmp_path, monkeypatch):
    cache = LocalCache(SharedStamps(str(tmp_path / "stamps")), ttl=30)
    cache.put("k", 1, cache.stamps("s"))
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 31)

    assert cache.get("k") is None


def test_the_cache_stays_bounded(tmp_path):
    cache = LocalCache(SharedStamps(str(tmp_path / "stamps")), max_entries=10)
    for n in range(25):
        cache.put(f"k{n}", n, cache.stamps("s"))

    assert len(cache._entries) <= 10
    assert cache.get("k24") == 24
