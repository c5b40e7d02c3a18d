"""todoscale: a collaborative todo service built on Flask the way Flask is built at scale."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Loaded on first use, not at import: gunicorn's master reads deploy/gunicorn.conf.py
    # (which imports todoscale.deploy) before it sets up the metrics folder, and
    # prometheus_client must not be imported before that (it picks its mode at import).
    if name == "create_app":
        from todoscale.app import create_app

        return create_app
    raise AttributeError(name)
