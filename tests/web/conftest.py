"""Helpers for the pages: a user with a test client of their own, sending forms like a browser."""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from todoscale import create_app
from todoscale.extensions import db
from todoscale.models import User
from todoscale.services import lists

COOKIE = "todoscale_session"
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_numbers = itertools.count(1)


def csrf_token(response: TestResponse) -> str:
    """The CSRF token of the first form of a page."""
    match = _CSRF.search(response.get_data(as_text=True))
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


class WebUser:
    """A person with a browser (a test client of their own) who registered through the page."""

    def __init__(self, app: Flask, username: str | None = None) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()
        self.username = username or f"web{next(_numbers)}"
        self.password = PASSWORD
        page = self.client.get("/register")
        response = self.client.post(
            "/register",
            data={
                "csrf_token": csrf_token(page),
                "username": self.username,
                "email": f"{self.username}@example.com",
                "password": self.password,
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)

    def api_token(self) -> str:
        """A bearer token of this user, issued for HTTP Basic as to any API client."""
        creds = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        response = self.app.test_client().post(
            "/api/v1/tokens", headers={"Authorization": f"Basic {creds}"}
        )
        assert response.status_code == 201, response.get_json()
        token: str = response.get_json()["token"]
        return token

    def token(self) -> str:
        """A CSRF token of the current session, read from a page as a browser would."""
        page = self.client.get("/profile")
        if page.status_code != 200:
            page = self.client.get("/login")
        return csrf_token(page)

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        """POST a form with this session's CSRF token."""
        return self.client.post(url, data={"csrf_token": self.token(), **(data or {})}, **kwargs)

    def text(self, url: str, **kwargs: Any) -> str:
        response = self.client.get(url, **kwargs)
        assert response.status_code == 200, (url, response.status_code)
        return response.get_data(as_text=True)

    def cookie(self) -> str | None:
        cookie = self.client.get_cookie(COOKIE)
        return cookie.value if cookie else None

    def log_in(self, password: str | None = None, **kwargs: Any) -> TestResponse:
        page = self.client.get("/login")
        return self.client.post(
            "/login",
            data={
                "csrf_token": csrf_token(page),
                "username": self.username,
                "password": password or self.password,
            },
            **kwargs,
        )

    def user(self) -> User:
        """The user's row, read in a fresh app context (use it inside `with app.app_context()`)."""
        found = db.session.query(User).filter_by(username=self.username).one()
        return found

    def inbox_id(self) -> str:
        with self.app.app_context():
            return lists.default_list_id(self.user())

    def new_list(self, name: str) -> str:
        response = self.post("/lists", {"name": name})
        assert response.status_code == 302, response.get_data(as_text=True)
        return response.headers["Location"].rsplit("/", 1)[-1]

    def add_todo(self, list_id: str, title: str, **fields: str) -> TestResponse:
        response = self.post(f"/lists/{list_id}/todos", {"title": title, **fields})
        assert response.status_code == 302, response.get_data(as_text=True)
        return response


@pytest.fixture
def web_user(app: Flask) -> Callable[..., WebUser]:
    """Register people through the pages, each in a browser of their own."""
    return lambda username=None: WebUser(app, username)


@pytest.fixture
def ann(app: Flask) -> WebUser:
    """A logged-in user of the web pages."""
    return WebUser(app, "ann")


@pytest.fixture
def ben(app: Flask) -> WebUser:
    """A second logged-in user, in another browser."""
    return WebUser(app, "ben")


@pytest.fixture
def other_app(app: Flask) -> Iterator[Callable[..., Flask]]:
    """Build more apps on the test database (other settings, extra routes); closed afterwards."""
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        other = create_app(
            {
                "ENV_NAME": "testing",
                "INSTANCE_PATH": app.instance_path,
                "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                **overrides,
            }
        )
        made.append(other)
        return other

    yield make
    for other in made:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
