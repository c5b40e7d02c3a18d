"""Password hashing leaves the event loop: logins running on a gevent server stall no one."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.deploy.helpers import free_port_run, stop_group, wait_for

PASSWORD = "event loop password"


def _request(url: str, method: str = "GET", body: object = None, basic: str = "") -> int:
    headers = {"Content-Type": "application/json"}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        return int(response.status)


@pytest.mark.database_free  # a server on SQLite in its instance folder
def test_healthz_is_answered_while_logins_hash_on_a_gevent_server(tmp_path: Path):
    port = free_port_run(1)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TODOSCALE_")},
        "TODOSCALE_INSTANCE_PATH": str(tmp_path),
        "TODOSCALE_ENV": "development",
        "TODOSCALE_RATE_LIMITS_ENABLED": "0",
        # Costly enough that one hash holds a core for a good fraction of a second.
        "TODOSCALE_ARGON2_TIME_COST": "4",
        "PORT": str(port),
    }
    argv = [sys.executable, "-m", "todoscale.cli", "serve", "--socketio"]
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz", proc, timeout=60)
        user = {"username": "loop", "email": "loop@example.com", "password": PASSWORD}
        assert _request(f"{base}/api/v1/users", "POST", user) == 201
        logins_done = threading.Event()
        answered_meanwhile = 0

        def login(_: int) -> int:
            status = _request(f"{base}/api/v1/tokens", "POST", basic=f"loop:{PASSWORD}")
            logins_done.set()  # the first login to finish ends the count
            return status

        with ThreadPoolExecutor(3) as pool:
            logins = [pool.submit(login, n) for n in range(3)]
            # One /healthz after another until the first login answers: with the hashes on
            # the event loop, none would be answered between the logins' start and end.
            while not logins_done.is_set():
                assert _request(f"{base}/healthz") == 200
                if not logins_done.is_set():
                    answered_meanwhile += 1
            assert [login.result() for login in logins] == [201, 201, 201]
    finally:
        stop_group(proc, signal.SIGTERM)

    assert answered_meanwhile >= 5, (tmp_path / "server.log").read_text()[-2000:]
