"""Fixtures for the operations tests: apps of their own, built with other settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade

from todoscale import create_app
from todoscale.extensions import db


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build extra apps (testing config, own instance folder and SQLite file) with overrides."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        folder = tmp_path / f"app{len(apps)}"
        app = create_app(
            {
                "ENV_NAME": "testing",
                "INSTANCE_PATH": str(folder),
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'ops.db'}",
                **overrides,
            }
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


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
