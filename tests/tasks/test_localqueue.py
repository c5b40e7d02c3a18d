"""The embedded set-up's local queue: the Celery broker and the relay poll it 10 times a second.

kombu's SQLAlchemy transport sleeps a second whenever the queue gives nothing, which a worker
at its prefetch limit meets after every job: a job queued behind another waited up to a second.
"""

from __future__ import annotations

from collections.abc import Callable

import kombu
from flask import Flask

from todoscale import localqueue


def test_the_local_broker_is_polled_every_tenth_of_a_second(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(REDIS_URL="", BROKER_URL="")
    celery = app.extensions["celery"]
    assert celery.conf.broker_url.startswith("sqla+sqlite:///")
    with celery.connection_for_write() as connection:
        assert isinstance(connection.transport, localqueue.Transport)
        assert connection.transport.polling_interval == localqueue.POLL_SECONDS == 0.1


def test_the_relay_and_a_given_sqla_url_use_the_same_transport(tmp_path: object) -> None:
    with kombu.Connection(f"sqla+sqlite:///{tmp_path}/queue.sqlite") as connection:
        assert isinstance(connection.transport, localqueue.Transport)
