"""Load: wrk and what it says, or (wrk missing) a Python load generator marked as such; plus
the probe wrk cannot be: one request on a fresh connection in the middle of the run, so a
server that starves connections shows."""

from __future__ import annotations

import asyncio
import http.client
import itertools
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
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
    tool: str = "wrk"

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
        conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=timeout
        )
        conn.request(
            "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers
        )
        conn.getresponse().read()
        conn.close()
    except OSError:
        return None
    return (time.perf_counter() - started) * 1000


WRK_MISSING = (
    "wrk is not installed: `apt-get install wrk` (Debian, Ubuntu), `brew install wrk` (macOS), "
    "or build it from https://github.com/wg/wrk."
)


def require_wrk() -> str:
    """The wrk binary, or an error saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(WRK_MISSING)
    return path


def run(
    url: str,
    *,
    connections: int,
    seconds: int,
    headers: dict[str, str],
    threads: int = 2,
    timeout_s: int = 5,
    python: bool = False,
    write: Write | None = None,
) -> Result:
    """One wrk run (or, with `python`, one of the Python generator), probed halfway through.

    With `write`, every request is that method with its bodies in turn (JSON); the probe
    stays a GET of the same URL, on a fresh connection.
    """
    if python:
        return python_run(
            url, connections=connections, seconds=seconds, headers=headers, write=write
        )
    with tempfile.TemporaryDirectory(prefix="todoscale-wrk-") as folder:
        script = []
        if write is not None:
            script = ["-s", str(Path(folder) / "write.lua")]
            Path(script[1]).write_text(write.lua(threads))
        return _wrk(url, connections, seconds, headers, threads, timeout_s, script)


@dataclass(frozen=True)
class Write:
    """The requests of a write case: one method, JSON bodies sent in turn, to the run's URL
    or spread over `paths` (each path then gets the bodies in turn, its visits spaced by
    the number of paths: many todos completed and reopened, never one from every
    connection at once, which answers all but one of them 412)."""

    method: str
    bodies: tuple[str, ...]
    paths: tuple[str, ...] = ()

    def turn(self, i: int) -> tuple[str | None, str]:
        """Request `i` of the run's sequence: its path (None: the URL's) and its body."""
        if not self.paths:
            return None, self.bodies[i % len(self.bodies)]
        visit = i // len(self.paths)
        return self.paths[i % len(self.paths)], self.bodies[visit % len(self.bodies)]

    def lua(self, threads: int) -> str:
        """The wrk script sending them (after -H's headers, which wrk has set already): `turn`
        in Lua, thread k of `threads` sending requests k, k + threads, k + 2 x threads..."""
        bodies = ", ".join(f"[==[{body}]==]" for body in self.bodies)
        paths = ", ".join(f"[==[{path}]==]" for path in self.paths)
        return f"""local bodies = {{{bodies}}}
local paths = {{{paths}}}
local made = 0
local n = 0
setup = function(thread)
  thread:set("offset", made)
  made = made + 1
end
wrk.method = "{self.method}"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local i = n * {threads} + (offset or 0)
  n = n + 1
  if #paths == 0 then
    return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])
  end
  local visit = math.floor(i / #paths)
  return wrk.format(nil, paths[(i % #paths) + 1], nil, bodies[(visit % #bodies) + 1])
end
"""


def _wrk(
    url: str,
    connections: int,
    seconds: int,
    headers: dict[str, str],
    threads: int,
    timeout_s: int,
    script: list[str],
) -> Result:
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
    argv += [*script, url]
    probed: list[float | None] = []
    # The probe waits until the run ends, and a second more: no answer by then is starvation.
    wait = min(seconds / 2 + 1, timeout_s)
    timer = threading.Timer(seconds / 2, lambda: probed.append(probe(url, headers, wait)))
    timer.start()
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + timeout_s + 30, check=True
    )
    timer.join()
    result = parse(done.stdout)
    result.probe_ms = probed[0] if probed else None
    return result


PYTHON_TOOL = "python load generator (wrk missing): far slower than wrk, figures not comparable"


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    non_2xx: int = 0
    errors: int = 0


async def _response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length or chunked); return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {
        k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)
    }
    if fields.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(fields.get("content-length", "0")))
    return status


async def _connection(
    requests: Callable[[int], bytes], first: int, step: int, address: tuple[str, int],
    until: float, tally: _Tally,
) -> None:  # fmt: skip
    """One keep-alive connection sending requests `first`, `first + step`... of the run until
    `until` (reconnecting on errors)."""
    turn = itertools.count(first, step)
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), 5)
        except (TimeoutError, OSError):
            tally.errors += 1
            continue
        try:
            while time.monotonic() < until:
                started = time.perf_counter()
                writer.write(requests(next(turn)))
                status = await asyncio.wait_for(_response(reader), 5)
                tally.latencies.append((time.perf_counter() - started) * 1000)
                tally.non_2xx += not 200 <= status < 400
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            tally.errors += 1
        finally:
            writer.close()


def _requests(url: str, headers: dict[str, str], write: Write | None) -> Callable[[int], bytes]:
    """Request `i` of the run, as bytes on the wire."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"Host: {parts.hostname}:{parts.port or 80}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if write is None:
        read = ("\r\n".join([f"GET {target} HTTP/1.1", *lines]) + "\r\n\r\n").encode()
        return lambda _: read

    @lru_cache(maxsize=4096)
    def request(i: int) -> bytes:
        path, body = write.turn(i)
        data = body.encode()
        head = [f"{write.method} {path or target} HTTP/1.1", *lines]
        head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + data

    cycle = max(len(write.paths), 1) * len(write.bodies)
    return lambda i: request(i % cycle)


def python_run(
    url: str,
    *,
    connections: int,
    seconds: int,
    headers: dict[str, str],
    write: Write | None = None,
) -> Result:
    """What `run` measures, with asyncio instead of wrk: one process, one core."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = _requests(url, headers, write)
    tally = _Tally()

    async def main() -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(
                _connection(requests, k, connections, (host, port), until, tally)
                for k in range(connections)
            )
        )

    probed: list[float | None] = []
    wait = min(seconds / 2 + 1, 5)
    timer = threading.Timer(seconds / 2, lambda: probed.append(probe(url, headers, wait)))
    timer.start()
    started = time.monotonic()
    asyncio.run(main())
    elapsed = time.monotonic() - started
    timer.join()
    done = sorted(tally.latencies) or [0.0]
    return Result(
        requests_per_second=len(tally.latencies) / elapsed,
        p50_ms=done[len(done) // 2],
        p99_ms=done[min(len(done) - 1, int(len(done) * 0.99))],
        mean_ms=statistics.fmean(done),
        socket_errors=tally.errors,
        non_2xx=tally.non_2xx,
        requests=len(tally.latencies),
        probe_ms=probed[0] if probed else None,
        tool=PYTHON_TOOL,
    )
