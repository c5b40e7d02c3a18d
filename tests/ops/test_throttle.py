"""auth/throttle.py: failed password checks are budgeted atomically, under real concurrency."""

from __future__ import annotations

import http.client
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.ops.test_limits import basic, register
from tests.web.conftest import WebUser

GUESSES = 50
BUDGET = 5
# Costly enough that the guesses overlap as they would against production's argon2 cost.
SLOW_ARGON2 = {"ARGON2_TIME_COST": 2, "ARGON2_MEMORY_KIB": 8192}


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], int]]:
    """Serve an app on a free port of 127.0.0.1 (werkzeug, a thread per request)."""
    servers = []

    def start(app: Flask) -> int:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_port

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _guess_at_once(port: int, username: str) -> list[int]:
    """GUESSES wrong passwords for `username`, all sent at the same moment."""
    start = threading.Barrier(GUESSES)

    def guess(_: int) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start.wait()
        connection.request("POST", "/api/v1/tokens", headers=basic(username, "wrong guess"))
        status = connection.getresponse().status
        connection.close()
        return status

    with ThreadPoolExecutor(GUESSES) as pool:
        return list(pool.map(guess, range(GUESSES)))


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_concurrent_wrong_passwords_cost_at_most_the_budget_of_verifications(
    request, limited_app, serve, argon2_runs, store
):
    settings = {**SLOW_ARGON2, "LOGIN_FAILURES_PER_ADDRESS": f"{BUDGET} per 15 minutes"}
    if store == "redis":
        settings["REDIS_URL"] = request.getfixturevalue("redis_url")
    app = limited_app(**settings)
    username = f"alice{uuid.uuid4().hex[:8]}"  # counts in Redis outlive a run
    register(app.test_client(), username)
    argon2_runs.clear()

    statuses = _guess_at_once(serve(app), username)

    verified = argon2_runs.count("verify")
    assert verified <= BUDGET, f"{verified} verifications for a budget of {BUDGET}"
    assert statuses.count(401) == verified
    assert statuses.count(429) == GUESSES - verified
    # The budget is spent, not overspent: the right password waits like the rest.
    assert app.test_client().post("/api/v1/tokens", headers=basic(username, "x")).status_code == 429


def test_the_current_password_check_of_a_password_change_is_throttled(limited_app, argon2_runs):
    app = limited_app(LOGIN_FAILURES_PER_ADDRESS=f"{BUDGET} per 15 minutes")
    ann = WebUser(app, "ann")
    argon2_runs.clear()

    def change(current: str, new: str = "a brand new secret") -> int:
        form = {"current_password": current, "new_password": new, "confirm": new}
        return ann.post("/profile/password", form).status_code

    assert [change("not it") for _ in range(BUDGET - 1)] == [422] * (BUDGET - 1)
    # A refused new password verifies nothing and costs no budget.
    assert change(ann.password, new="short") == 422
    assert change("not it") == 422
    assert change("not it") == 429
    assert change(ann.password) == 429, "the right password waits for the window too"
    assert argon2_runs.count("verify") == BUDGET
    # One budget per account and address, whichever form checks the password.
    ann.post("/logout")
    assert ann.log_in().status_code == 429
