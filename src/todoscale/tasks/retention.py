"""Beat's purge of what has outlived its retention (settings: TODOSCALE_*_RETENTION_*)."""

from __future__ import annotations

from celery import shared_task

from todoscale.services import retention
from todoscale.tasks import PURGE_EXPIRED


@shared_task(name=PURGE_EXPIRED)
def purge_expired() -> dict[str, int]:
    """Delete finished jobs, expired tokens and sessions, and old notifications."""
    return retention.purge_expired()
