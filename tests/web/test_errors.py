"""errors.py: translated HTML error pages for the browser, problem+json under /api/."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import Forbidden, TooManyRequests


@pytest.fixture
def failing_app(other_app):
    """An app with routes that fail on purpose (the shared app's routes are fixed)."""
    other = other_app()

    @other.get("/fail/<int:status>")
    def fail(status: int) -> str:
        if status == 403:
            raise Forbidden()
        if status == 429:
            raise TooManyRequests(retry_after=30)
        raise RuntimeError("boom")

    @other.get("/api/v1/fail")
    def api_fail() -> str:
        raise RuntimeError("boom")

    return other


@pytest.mark.parametrize(
    ("status", "english", "chinese"),
    [
        (403, "You may not do that", "你无权这样做"),
        (429, "Too many requests", "请求过于频繁"),
        (500, "Something went wrong", "出错了"),
    ],
)
def test_error_pages_are_translated_html(failing_app, status, english, chinese):
    client = failing_app.test_client()
    response = client.get(f"/fail/{status}")
    assert response.status_code == status and response.mimetype == "text/html"
    assert english in response.get_data(as_text=True)
    response = client.get(f"/fail/{status}", headers={"Accept-Language": "zh-CN"})
    assert response.status_code == status
    assert chinese in response.get_data(as_text=True)
    if status == 429:
        assert response.headers["Retry-After"] == "30"


def test_unexpected_errors_under_the_api_stay_problem_json(failing_app):
    response = failing_app.test_client().get("/api/v1/fail")
    assert response.status_code == 500 and response.mimetype == "application/problem+json"


def test_not_found_page_and_problem(client):
    response = client.get("/no/such/page", headers={"Accept-Language": "zh-Hans"})
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "页面不存在" in response.get_data(as_text=True)
    response = client.get("/api/v1/no/such/thing")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 404


def test_method_not_allowed_page(client):
    response = client.delete("/login")
    assert response.status_code == 405 and response.mimetype == "text/html"
    assert "Allow" in response.headers
