"""Apps with the cache on, as workers of one host or as hosts."""

from __future__ import annotations

import pytest


@pytest.fixture
def cached_apps(app, database_url, tmp_path, request):
    """Build app instances with the cache on and the suite's database: on SQLite sharing
    one instance folder (as the workers of one host do), on a server database with their
    stamps and shared tier in Redis (as hosts do)."""
    from todoscale import create_app
    from todoscale.extensions import db

    settings = {
        "ENV_NAME": "testing",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_PATH": str(tmp_path / "shared"),
    }
    if database_url.startswith("sqlite"):
        settings["LOCAL_CACHE"] = "on"
    else:
        settings["REDIS_URL"] = request.getfixturevalue("redis_url")
    made = []

    def make(count: int, **overrides):
        apps = [create_app({**settings, **overrides}) for _ in range(count)]
        for each in apps:
            assert "todoscale.local_cache" in each.extensions
        made.extend(apps)
        return apps

    yield make
    for each in made:
        with each.app_context():
            db.session.remove()
            db.engine.dispose()
