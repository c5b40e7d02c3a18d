"""Security events: one JSON line each, on the `todoscale.security` logger.

Logins and their failures, throttling, token and session revocation, admin roles and every
admin action go through `security_event`, so they can be shipped or alerted on apart from
the request lines (filter on `"logger": "todoscale.security"`).
"""

from __future__ import annotations

import logging
from typing import Any

from todoscale.signals import sessions_ended, tokens_revoked

logger = logging.getLogger("todoscale.security")

# A failure worth someone's attention is logged a level higher than a routine event.
WARNING_EVENTS = frozenset({"login.failed", "login.throttled", "admin.denied"})


def security_event(event: str, **fields: Any) -> None:
    """Log one security event with its fields (user, target...); made in a request, the
    client's address joins them (`ops.logs` stamps it unless `fields` names one)."""
    level = logging.WARNING if event in WARNING_EVENTS else logging.INFO
    logger.log(level, event, extra={"event": event, "security": True, **fields})


def _tokens_revoked(sender: object, *, user_id: str, **_: Any) -> None:
    security_event("tokens.revoked", user_id=user_id, how=getattr(sender, "__name__", "?"))


def _sessions_ended(sender: object, *, user_id: str, **_: Any) -> None:
    security_event("sessions.ended", user_id=user_id, how=getattr(sender, "__name__", "?"))


def connect_receivers() -> None:
    """Log revocations the services announce (connecting again is a no-op)."""
    tokens_revoked.connect(_tokens_revoked, weak=False)
    sessions_ended.connect(_sessions_ended, weak=False)
