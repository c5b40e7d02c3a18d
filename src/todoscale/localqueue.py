"""The embedded set-up's local queue: kombu's SQLAlchemy transport, polled ten times a second.

Without Redis, jobs (Celery's broker) and the relay's live events travel through a SQLite
file with kombu's SQLAlchemy transport (`sqla+sqlite:///...`, see `config.broker_url`).
kombu's virtual transports sleep `polling_interval` (1 s) whenever the queue gives nothing,
and Celery's worker finds it so after every job it runs while at its prefetch limit: a job
queued behind another waited up to a second to start, an export's first progress too.
The SQLAlchemy transport hands every transport option to `create_engine`, so the interval
cannot be set as the option other transports take. This subclass polls every
`POLL_SECONDS` (an indexed local SELECT, about 0.1 ms) and is what the `sqla` scheme names
in every process that imports this module (the Celery app and the relay do, before they
connect).
"""

from __future__ import annotations

import kombu.transport
from kombu.transport import sqlalchemy

POLL_SECONDS = 0.1


class Transport(sqlalchemy.Transport):
    """kombu's SQLAlchemy transport, polling every `POLL_SECONDS`."""

    polling_interval = POLL_SECONDS


# kombu resolves a URL's `sqla+` prefix through this table (and caches the class per name on
# first use: the Celery app and the relay import this module before they connect).
kombu.transport.TRANSPORT_ALIASES["sqla"] = f"{__name__}:Transport"
kombu.transport.TRANSPORT_ALIASES["sqlalchemy"] = f"{__name__}:Transport"
