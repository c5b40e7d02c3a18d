"""Liveness and readiness."""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, current_app
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from todoscale.extensions import db

logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """200 while the process serves: the trivial JSON endpoint (the benchmark's floor)."""
    return {"status": "ok"}


def _redis_status(url: str) -> str:
    """`ok` when Redis answers PING within a second, else `unavailable` (logged)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        logger.warning("readiness: redis unavailable: %s", exc)
        return "unavailable"
    finally:
        client.close()
    return "ok"


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """200 when the database (and Redis, when configured) answer, else 503 naming what failed."""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        logger.warning("readiness: database unavailable: %s", exc)
        checks["database"] = "unavailable"
    finally:
        db.session.rollback()
    if current_app.config["REDIS_URL"]:
        checks["redis"] = _redis_status(current_app.config["REDIS_URL"])
    ready = all(value == "ok" for value in checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
