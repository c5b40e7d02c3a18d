"""Fixtures for the operations tests: apps with small limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade

LIMITS = {
    "RATE_LIMITS_ENABLED": True,
    "API_WRITE_LIMIT": "3 per minute",
    "ANON_LIMIT": "100 per minute",
    "LOGIN_FAILURES_PER_ADDRESS": "3 per 15 minutes",
    "LOGIN_FAILURES_PER_ACCOUNT": "100 per hour",
}


@pytest.fixture
def limited_app(make_app: Callable[..., Flask]) -> Callable[..., Flask]:
    """An app with small limits (overridable), its schema migrated."""

    def make(**overrides: Any) -> Flask:
        app = make_app(**{**LIMITS, **overrides})
        with app.app_context():
            upgrade()
        return app

    return make
