"""Fixtures of the console's tests: an admin with a browser, and one without the role."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.web.conftest import WebUser, csrf_token
from todoscale.services import monitoring

__all__ = ["csrf_token", "grant"]


def grant(app: Flask, username: str) -> None:
    """Make `username` an admin through the service (it invalidates cached lookups)."""
    with app.app_context():
        monitoring.set_admin(username, True, by="test")


@pytest.fixture
def admin(app: Flask) -> WebUser:
    """A logged-in admin."""
    user = WebUser(app, "boss")
    grant(app, "boss")
    return user


@pytest.fixture
def member(app: Flask) -> WebUser:
    """A logged-in user who is no admin."""
    return WebUser(app, "pleb")
