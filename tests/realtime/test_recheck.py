"""realtime.recheck against a real server and real Socket.IO clients: every way of revoking a
user's tokens (the API's `?all=true`, a password change, logging out everywhere) closes the
connections they opened, and those of the user's other browsers; a bystander stays."""

from __future__ import annotations

import base64
import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import socketio
from flask import Flask

from tests.realtime.conftest import LiveClient, SocketServer, call, queue_env, running

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def server(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SocketServer]:
    """A serving process that re-checks its connections five times a second (one for the
    module: each test's users are new rows, their tokens new secrets)."""
    env = {**queue_env(app), "TODOSCALE_SOCKETIO_RECHECK_SECONDS": "0.2"}
    folder = tmp_path_factory.mktemp("recheck")
    with running(SocketServer(app.config["SQLALCHEMY_DATABASE_URI"], folder, env)) as s:
        yield s


def _register(url: str, username: str) -> None:
    body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    request = urllib.request.Request(
        f"{url}/api/v1/users",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def _token(url: str, username: str) -> str:
    creds = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        f"{url}/api/v1/tokens", method="POST", headers={"Authorization": f"Basic {creds}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        token: str = json.loads(response.read())["token"]
    return token


def _works(url: str, token: str) -> bool:
    try:
        call("GET", f"{url}/api/v1/users/me", token)
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
        return False
    return True


class Browser:
    """A browser's cookies and forms against the real server: logs in, posts forms."""

    def __init__(self, url: str, username: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.post("/login", {"username": username, "password": PASSWORD}, form_page="/login")

    def post(self, path: str, data: dict[str, str], form_page: str = "/profile") -> None:
        with self.opener.open(self.url + form_page, timeout=10) as page:
            csrf = _CSRF.search(page.read().decode())
        assert csrf, f"{form_page} has no form"
        body = urllib.parse.urlencode({"csrf_token": csrf.group(1), **data}).encode()
        self.opener.open(self.url + path, data=body, timeout=10).close()

    def live(self) -> socketio.Client:
        """A Socket.IO connection opened with this browser's session cookie."""
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.jar)
        client = socketio.Client(reconnection=False)
        client.connect(self.url, headers={"Cookie": cookie}, transports=["websocket"])
        return client


def _closed(connection: Any, seconds: float = 10.0) -> bool:
    sio = connection.sio if isinstance(connection, LiveClient) else connection
    deadline = time.monotonic() + seconds
    while sio.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    return not sio.connected


def _revoke_through_the_api(url: str, username: str, token: str) -> None:
    call("DELETE", f"{url}/api/v1/tokens?all=true", token)


def _change_the_password(url: str, username: str, token: str) -> None:
    Browser(url, username).post(
        "/profile/password",
        {
            "current_password": PASSWORD,
            "new_password": "a new password",
            "confirm": "a new password",
        },
    )


def _log_out_everywhere(url: str, username: str, token: str) -> None:
    Browser(url, username).post("/profile/sessions", {})


@pytest.mark.parametrize(
    "revoke", [_revoke_through_the_api, _change_the_password, _log_out_everywhere]
)
def test_revoking_every_token_closes_every_connection_of_the_user(
    server: SocketServer, live_clients: Any, revoke: Any
) -> None:
    """Tokens survived a password change and "log out everywhere", and so did the
    Socket.IO connections they had opened."""
    url = server.url
    for username in ("ruth", "sam"):
        _register(url, username)
    first, second = _token(url, "ruth"), _token(url, "ruth")
    connections = [live_clients(url, first), live_clients(url, second)]
    other_browser = Browser(url, "ruth").live()
    bystander = live_clients(url, _token(url, "sam"))
    assert all(c.sio.connected for c in connections) and other_browser.connected

    revoke(url, "ruth", first)

    assert not _works(url, first) and not _works(url, second)  # at once
    assert all(_closed(connection) for connection in connections)
    if revoke is not _revoke_through_the_api:  # the browsers' sessions ended too
        assert _closed(other_browser)
    else:
        assert other_browser.connected  # a browser's session is not a token
    other_browser.disconnect()
    assert bystander.sio.connected
