"""A real server on a free local port and a headless Chromium driven by Playwright.

The server is what production runs for Socket.IO: gunicorn with one gevent worker and
TODOSCALE_REALTIME=serve, on a migrated SQLite file of its own, in its own process group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT, skip_or_fail

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"
PASSWORD = "correct horse battery"


def register(page: Any, base: str, username: str) -> None:
    """Sign up through the registration page (in English) and land on the home page."""
    page.goto(f"{base}/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/")


@dataclass(frozen=True)
class LiveServer:
    """The running server: its base URL and the settings another process needs to share it."""

    url: str
    env: dict[str, str]
    log: Path

    def __str__(self) -> str:
        return self.url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_serving(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not start:\n{log.read_text(errors='replace')[-4000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it if it is still there after 10 s."""
    for signum, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`gunicorn -k gevent -w 1 todoscale.wsgi:app` serving the pages and Socket.IO."""
    folder = tmp_path_factory.mktemp("live")
    env = {key: value for key, value in os.environ.items() if not key.startswith("TODOSCALE_")}
    env.update(
        TODOSCALE_ENV="testing",
        TODOSCALE_INSTANCE_PATH=str(folder),
        TODOSCALE_DATABASE_URL=f"sqlite:///{folder / 'live.db'}",
        TODOSCALE_REALTIME="serve",
        PYTHONUNBUFFERED="1",
    )
    todoscale = Path(sys.executable).with_name("todoscale")
    subprocess.run(
        [str(todoscale), "db", "upgrade"], env=env, cwd=folder, check=True, capture_output=True
    )
    port = _free_port()
    log = folder / "gunicorn.log"
    argv = [sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", "1"]
    argv += ["-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "todoscale.wsgi:app"]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, proc, log)
        yield LiveServer(url, env, log)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless; skipped (or failed in CI) when it or Playwright is missing."""
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is missing: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """Where the run leaves its screenshots (not committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
