"""/readyz reports Redis beside the database when TODOSCALE_REDIS_URL is set."""

from __future__ import annotations

import logging

NOBODY_LISTENS = "redis://127.0.0.1:1/0"


def test_readyz_is_503_naming_redis_when_it_is_unreachable(make_app, caplog):
    app = make_app(REDIS_URL=NOBODY_LISTENS)

    logger = logging.getLogger("todoscale.ops.health")
    logger.addHandler(caplog.handler)  # caught on the logger itself, whatever propagates
    try:
        with caplog.at_level(logging.WARNING, logger="todoscale.ops.health"):
            response = app.test_client().get("/readyz")
    finally:
        logger.removeHandler(caplog.handler)

    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "unavailable"},
    }
    assert "redis unavailable" in caplog.text


def test_readyz_is_200_with_both_when_redis_answers(make_app, redis_url):
    app = make_app(REDIS_URL=redis_url)

    response = app.test_client().get("/readyz")

    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}
