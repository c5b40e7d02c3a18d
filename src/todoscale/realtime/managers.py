"""python-socketio's client managers on a message queue (Redis, else kombu): what a process
that serves Socket.IO, or emits through a message queue, fans out with.

Apart from `transport`, which every emitter imports: a process that emits through the
relay (`todoscale run`'s HTTP workers and Celery worker) never imports python-socketio.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
import socketio

from todoscale.realtime.transport import channel_name

logger = logging.getLogger(__name__)


# An emitter publishes inside a request that has already committed: a hung Redis may cost
# it this long, never hold it. (Not for listeners: an idle subscription would time out.)
# A quarter second, as the cache's and the limits' clients: the first write of a process
# after Redis hangs pays each of them once, 0.75 s in all (1 s with 0.5 here: p99 over 1 s
# in the bounded runs of tests/chaos/test_redis_faults.py at 25 req/s).
PUBLISH_TIMEOUTS = {"socket_timeout": 0.25, "socket_connect_timeout": 0.25}


def queue_manager(url: str, *, write_only: bool) -> socketio.PubSubManager:
    """A python-socketio client manager on the message queue `url` (Redis, else kombu)."""
    channel = channel_name(url)
    if url.startswith(("redis://", "rediss://", "unix://", "valkey://", "valkeys://")):
        if write_only:
            return FailFastRedisManager(
                url, channel=channel, write_only=True, redis_options=PUBLISH_TIMEOUTS
            )
        return socketio.RedisManager(url, channel=channel, write_only=False)
    return socketio.KombuManager(url, channel=channel, write_only=write_only)


class FailFastRedisManager(socketio.RedisManager):
    """An emitter's Redis manager that steps aside while Redis cannot be reached.

    python-socketio tries each publish twice, each up to the socket timeout (0.5 s then): with
    Redis hung, every write waited a second for a push that was lost anyway (p99 1.5 s at
    0.5 x capacity, tests/chaos/test_redis_faults.py). Here a failed publish is not retried,
    and none is tried for a pause (FIRST_PAUSE, doubling to LONGEST_PAUSE while Redis stays
    away); the events of that pause are dropped, as the committed change's push is when Redis
    is down.
    """

    FIRST_PAUSE, LONGEST_PAUSE = 1.0, 8.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._pause = 0.0
        self.dropped = 0

    def _publish(self, data: Any) -> Any:
        with self._lock:
            if time.monotonic() < self._down_until:
                self.dropped += 1
                return None
        try:
            # python-socketio's own flag, unset after a failure: connect again first.
            if not getattr(self, "connected", False):
                self._redis_connect()
            answer = self.redis.publish(self.channel, self.json.dumps(data))
        except (redis.RedisError, OSError) as exc:
            self.connected = False
            with self._lock:
                first = not self._pause
                self._pause = min(self._pause * 2 or self.FIRST_PAUSE, self.LONGEST_PAUSE)
                self._down_until = time.monotonic() + self._pause
            if first:
                logger.error("live updates are not sent while Redis cannot be reached: %s", exc)
            return None
        with self._lock:
            if self._pause:
                logger.warning("Redis answers again; live updates are sent (%d dropped)",
                               self.dropped)  # fmt: skip
                self._pause, self.dropped = 0.0, 0
        return answer
