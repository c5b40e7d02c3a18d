"""Running wrk and reading what it says, plus the probe wrk cannot be: one request on a
fresh connection in the middle of the run, so a server that starves connections shows."""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class Result:
    """One wrk run: throughput, latency percentiles (ms), failures, the probe, server CPU."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    socket_errors: int
    non_2xx: int
    requests: int
    probe_ms: float | None
    server_cpu_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def served_concurrency(self) -> float:
        """Little's law: how many connections were really being served at once."""
        return self.requests_per_second * self.mean_ms / 1000.0


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unreadable latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> Result:
    """Read wrk's `--latency` report."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    mean = _ms(re.search(r"Latency\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = sum(int(n) for n in errors.groups()) if errors else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Result(
        rps, p50, p99, mean, socket_errors, int(non_2xx.group(1)) if non_2xx else 0, total, None
    )


def probe(url: str, headers: dict[str, str], timeout: float) -> float | None:
    """Milliseconds for one request on a new connection, None if no answer in `timeout`."""
    parts = urlsplit(url)
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        conn.request(
            "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers
        )
        conn.getresponse().read()
        conn.close()
    except OSError:
        return None
    return (time.perf_counter() - started) * 1000


def require_wrk() -> str:
    """The wrk binary, or an error saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (Debian's package).")
    return path


def run(
    url: str,
    *,
    connections: int,
    seconds: int,
    headers: dict[str, str],
    threads: int = 2,
    timeout_s: int = 5,
) -> Result:
    """One wrk run, with the probe fired halfway through it."""
    argv = [
        require_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        f"--timeout={timeout_s}s",
    ]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    probed: list[float | None] = []
    timer = threading.Timer(seconds / 2, lambda: probed.append(probe(url, headers, timeout_s)))
    timer.start()
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + timeout_s + 30, check=True
    )
    timer.join()
    result = parse(done.stdout)
    result.probe_ms = probed[0] if probed else None
    return result
