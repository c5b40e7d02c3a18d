"""Stamps in Redis: shared across hosts, safe across a Redis restart, fail open when down."""

from __future__ import annotations

import logging
import socket
import uuid

import redis

from todoscale.cache import LocalCache
from todoscale.cache.stamps import RedisStamps


def _cache(url: str, **options) -> LocalCache:
    client = redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)
    return LocalCache(RedisStamps(client), **options)


def _scope() -> str:
    return f"list:{uuid.uuid4().hex}"  # unique per test: the suite's Redis is shared


def test_a_bump_on_one_host_invalidates_the_entry_on_another(redis_url):
    here, there, scope = _cache(redis_url), _cache(redis_url), _scope()
    here.put("page", ["a"], here.stamps(scope))
    assert here.get("page") == ["a"]

    there.bump(scope)

    assert here.get("page") is None


def test_entries_cached_before_a_redis_restart_never_match_again(redis_server):
    cache, scope = _cache(redis_server.url), _scope()
    cache.put("page", ["a"], cache.stamps(scope))
    redis.Redis.from_url(redis_server.url).flushall()  # what a restart without persistence does

    assert cache.get("page") is None


def test_with_redis_down_the_cache_steps_aside_and_warns_once(redis_server):
    cache, scope = _cache(redis_server.url, retry_after=0), _scope()
    cache.put("page", ["a"], cache.stamps(scope))
    redis_server.stop()
    records: list[logging.LogRecord] = []
    recorder = logging.Handler(logging.WARNING)
    recorder.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("todoscale.cache.local")
    logger.addHandler(recorder)
    try:
        assert cache.get("page") is None
        assert cache.stamps(scope) is None
        cache.bump(scope)  # a write during the outage: no exception
        for _ in range(20):
            cache.put("page", ["b"], cache.stamps(scope))
            assert cache.get("page") is None
    finally:
        logger.removeHandler(recorder)

    assert len([r for r in records if "unavailable" in r.getMessage()]) == 1


def test_after_an_outage_nothing_cached_before_it_is_served(redis_url):
    # A partition: the writer alone loses Redis, so its bump is lost while the survivor
    # keeps serving. When the writer gets through again it voids every older entry.
    survivor, scope = _cache(redis_url), _scope()
    writer_store = RedisStamps(redis.Redis.from_url(redis_url, socket_timeout=0.25))
    writer = LocalCache(writer_store, retry_after=0)
    survivor.put("page", ["old"], survivor.stamps(scope))
    reachable = writer_store._client
    writer_store._client = redis.Redis.from_url(
        f"redis://127.0.0.1:{_closed_port()}/0", socket_connect_timeout=0.25
    )
    writer.bump(scope)  # lost: this host cannot reach Redis
    assert survivor.get("page") == ["old"]  # (the survivor cannot know yet)

    writer_store._client = reachable  # the partition heals
    assert writer.stamps(scope) is not None  # first use after it: the epoch is bumped

    assert survivor.get("page") is None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when this returns
