"""What is kept and for how long: beat's purge of finished jobs (and their export files),
expired tokens and sessions, and old notifications.

Each rule lives with its domain (`jobs`, `accounts`, `sessions`, `notifications`); this is
the one use case that runs them all, each in short transactions of its own.
"""

from __future__ import annotations

import logging
from datetime import datetime

from todoscale.models import utcnow
from todoscale.services import jobs, notifications, sessions
from todoscale.services.accounts import purge_expired_tokens

logger = logging.getLogger(__name__)


def purge_expired(now: datetime | None = None) -> dict[str, int]:
    """Delete what has outlived its retention; return how many rows of each kind."""
    now = now or utcnow()
    purged = {
        "jobs": jobs.purge_finished_jobs(now),
        "tokens": purge_expired_tokens(now),
        "sessions": sessions.purge_expired_sessions(now),
        "notifications": notifications.purge_old_notifications(now),
    }
    if any(purged.values()):
        logger.info("purged %s", ", ".join(f"{count} {kind}" for kind, count in purged.items()))
    return purged
