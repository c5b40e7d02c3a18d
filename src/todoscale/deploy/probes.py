"""Free ports to start a server on, and a started server's first answer."""

from __future__ import annotations

import random
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterable


def free_port_run(count: int) -> int:
    """The first of `count` consecutive ports all free on 127.0.0.1 right now."""
    return free_ports_at(range(count))


def free_ports_at(offsets: Iterable[int]) -> int:
    """A port P such that P + each of `offsets` is free on 127.0.0.1 right now.

    Chosen below Linux's ephemeral range (32768 and up), where the local ports of outgoing
    connections (other suites' load generators on a shared machine) could take one of them
    between this check and the server's bind.
    """
    offsets = sorted(set(offsets))
    for _ in range(200):
        first = random.randrange(20_000, 32_000 - offsets[-1])
        socks = []
        try:
            for offset in offsets:
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", first + offset))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return first
    raise RuntimeError(f"found no port P with P + {offsets} all free")


def answers(url: str) -> bool:
    """Whether `url` answers 200 now (within 2 s)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_answer(url: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    """Poll `url` until it answers 200 (True), or `proc` exits or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        if answers(url):
            return True
        time.sleep(0.2)
    return False


def wait_ready(urls: list[str], timeout: float) -> list[str]:
    """Poll every URL until each answers 200; return those that never did."""
    waiting = list(urls)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        waiting = [url for url in waiting if not answers(url)]
        if waiting:
            time.sleep(0.3)
    return waiting
