"""services.audit called with no app: a security event is one record of its fields."""

from __future__ import annotations

import logging

from todoscale.services.audit import security_event


def test_a_security_event_outside_a_request_holds_its_fields_and_no_address(records_of):
    with records_of("todoscale.security") as records:
        security_event("login.failed", username="carol")
        security_event("tokens.revoked", user_id="u1", address="198.51.100.7")

    failed, revoked = records
    assert (failed.levelno, failed.getMessage(), failed.event) == (
        logging.WARNING,
        "login.failed",
        "login.failed",
    )
    assert (failed.security, failed.username) == (True, "carol")
    assert not hasattr(failed, "address")  # no request, no client: nothing made up
    assert (revoked.levelno, revoked.address) == (logging.INFO, "198.51.100.7")
