"""Socket.IO: how many clients one serving instance holds, and how fast an event reaches them.

One serving instance is `todoscale run`'s web process (gunicorn, one gevent worker,
TODOSCALE_REALTIME=serve) on SQLite, the embedded default. Clients speak Engine.IO 4 /
Socket.IO 5 over WebSocket directly (aiohttp), spread over a few client processes, each an
asyncio loop: a full python-socketio client per connection would measure the client.

(1) Capacity: clients connect in steps (250, 500, 1000, 2000, ...); at each level a todo is
created through the API and every client must receive it. The figure is the highest level
where all clients connected and all received the broadcast.
(2) Latency: with 1,000 clients (each a different member of one list) connected, todos are
created through the API one at a time; latency is receipt time minus the time the POST was
sent (an upper bound of commit-to-receipt: it includes the request's own work before the
commit). Baseline: the same with one client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import tempfile
import time
import urllib.request
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from bench import ROOT
from bench.embedded import free_port
from todoscale import create_app
from todoscale.bench import procs
from todoscale.deploy import servers
from todoscale.extensions import db
from todoscale.services import accounts, lists

CONNECT_TIMEOUT = 30.0
RECEIVE_TIMEOUT = 30.0
CONCURRENT_HANDSHAKES = 100


class Client:
    """One Socket.IO connection over a raw WebSocket: answers pings, timestamps events."""

    def __init__(self) -> None:
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.seen: dict[str, float] = {}
        self.task: asyncio.Task[None] | None = None

    async def connect(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        ws = await session.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket")
        opened = await ws.receive_str()
        assert opened.startswith("0"), opened
        await ws.send_str("40" + json.dumps({"token": token}))
        answer = await ws.receive_str()
        if not answer.startswith("40"):
            await ws.close()
            raise ConnectionError(answer)
        self.ws = ws
        self.task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            text = message.data
            if text == "2":
                await self.ws.send_str("3")
            elif text.startswith('42["todo.created"'):
                # The title is the marker; a full parse would measure the client.
                start = text.find('"title":"') + 9
                self.seen[text[start : text.find('"', start)]] = time.time()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def _serve_commands(pipe: Connection, url: str) -> None:
    loop = asyncio.get_running_loop()
    clients: list[Client] = []
    gate = asyncio.Semaphore(CONCURRENT_HANDSHAKES)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def connect(token: str) -> bool:
            client = Client()
            async with gate:
                try:
                    await asyncio.wait_for(client.connect(session, url, token), CONNECT_TIMEOUT)
                except (TimeoutError, OSError, ConnectionError, aiohttp.ClientError):
                    return False
            clients.append(client)
            return True

        while True:
            command, argument = await loop.run_in_executor(None, pipe.recv)
            if command == "connect":
                results = await asyncio.gather(*(connect(t) for t in argument))
                pipe.send((sum(results), len(results) - sum(results)))
            elif command == "expect":
                pipe.send(await _expect(clients, argument))
            else:
                await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
                pipe.send(None)
                return


async def _expect(clients: list[Client], markers: list[str]) -> dict[str, list[float]]:
    deadline = time.monotonic() + RECEIVE_TIMEOUT
    while time.monotonic() < deadline:
        if all(all(m in c.seen for m in markers) for c in clients):
            break
        await asyncio.sleep(0.05)
    return {m: [c.seen[m] for c in clients if m in c.seen] for m in markers}


def _client_process(pipe: Connection, url: str) -> None:
    procs.raise_fd_limit()
    asyncio.run(_serve_commands(pipe, url))


class Fleet:
    """Client processes sharing the connections; commands go to all, answers are merged."""

    def __init__(self, url: str, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs = []
        for _ in range(processes):
            mine, theirs = context.Pipe()
            proc = context.Process(target=_client_process, args=(theirs, url), daemon=True)
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)
        self.connected = 0

    def connect(self, tokens: list[str]) -> tuple[int, int]:
        """Open one more connection per token; (connected, failed)."""
        for n, pipe in enumerate(self.pipes):
            pipe.send(("connect", tokens[n :: len(self.pipes)]))
        answers = [pipe.recv() for pipe in self.pipes]
        ok, failed = sum(a[0] for a in answers), sum(a[1] for a in answers)
        self.connected += ok
        return ok, failed

    def expect(self, markers: list[str]) -> dict[str, list[float]]:
        """Receipt times of each marker's event, over every client that got it."""
        for pipe in self.pipes:
            pipe.send(("expect", markers))
        merged: dict[str, list[float]] = {m: [] for m in markers}
        for pipe in self.pipes:
            for marker, times in pipe.recv().items():
                merged[marker].extend(times)
        return merged

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(("close", None))
        for pipe, proc in zip(self.pipes, self.procs, strict=True):
            if pipe.poll(30):
                pipe.recv()
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


def seed(instance: Path, members: int) -> tuple[str, str, list[str]]:
    """An owner, a list shared with `members` users; (owner token, list id, member tokens)."""
    app = create_app(
        {
            "INSTANCE_PATH": str(instance),
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_KIB": 64,
            "REALTIME": "off",
        }
    )
    with app.app_context():
        owner = accounts.register_user("owner", "owner@example.com", "not a common one")
        list_id = lists.create_list(owner, "Everyone").todo_list.id
        tokens = []
        for n in range(members):
            user = accounts.register_user(
                f"member{n}", f"member{n}@example.com", "not a common one"
            )
            lists.share_list(owner, list_id, username=user.username)
            tokens.append(accounts.issue_token(user)[0])
        owner_token = accounts.issue_token(owner)[0]
        db.session.remove()
        db.engine.dispose()
    return owner_token, list_id, tokens


def post_todo(base: str, token: str, list_id: str, title: str) -> float | None:
    """Create a todo through the API; return when the request was sent (None: it failed)."""
    body = json.dumps({"title": title, "list_id": list_id}).encode()
    request = urllib.request.Request(
        f"{base}/api/v1/todos",
        method="POST",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    sent = time.time()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return sent if response.status == 201 else None
    except OSError as exc:  # a timeout: the server takes no more requests
        print(f"  POST /api/v1/todos failed: {exc!r}", flush=True)
        return None


def latencies(fleet: Fleet, base: str, token: str, list_id: str, count: int) -> dict[str, Any]:
    """p50/p99 in ms from POST sent to receipt, over `count` todos and every client."""
    samples: list[float] = []
    missing = failed = 0
    for n in range(count):
        marker = f"lat-{fleet.connected}-{n}-{time.time_ns()}"
        sent = post_todo(base, token, list_id, marker)
        if sent is None:
            failed += 1
            break
        got = fleet.expect([marker])[marker]
        missing += fleet.connected - len(got)
        samples.extend((t - sent) * 1000 for t in got)
        time.sleep(0.05)
    samples.sort()
    return {
        "clients": fleet.connected,
        "events": count,
        "failed_posts": failed,
        "samples": len(samples),
        "missing": missing,
        "p50_ms": statistics.median(samples) if samples else None,
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))] if samples else None,
    }


def capacity(
    fleet: Fleet, base: str, token: str, list_id: str, tokens: list[str], levels: list[int]
) -> dict[str, Any]:
    """Ramp the connections; stop at the first level that fails; the highest level held."""
    steps = []
    held = 0
    for level in (n for n in levels if n >= fleet.connected):
        started = time.monotonic()
        wanted = [tokens[n % len(tokens)] for n in range(fleet.connected, level)]
        _, failed = fleet.connect(wanted)
        connect_s = time.monotonic() - started
        marker = f"cap-{level}-{time.time_ns()}"
        sent = post_todo(base, token, list_id, marker)
        got = fleet.expect([marker])[marker] if sent is not None else []
        step = {
            "level": level,
            "connected": fleet.connected,
            "connect_failures": failed,
            "connect_seconds": round(connect_s, 2),
            "received": len(got),
            "last_receipt_ms": round((max(got) - sent) * 1000, 1) if sent and got else None,
        }
        steps.append(step)
        print(f"  {step}", flush=True)
        if failed or len(got) < fleet.connected:
            break
        held = level
    return {"held": held, "steps": steps}


def run(
    *,
    out: Path,
    members: int = 1000,
    levels: list[int] | None = None,
    events: int = 30,
    client_processes: int = 2,
    extra_args: list[str] | None = None,
) -> dict[str, Any]:
    """Start one serving instance; measure latency (1 vs `members` clients) and capacity."""
    levels = levels or [250, 500, 1000, 2000, 3000, 4000, 5000]
    procs.raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="todoscale-bench-rt-") as tmp:
        instance = Path(tmp)
        port = free_port()
        env = {
            "TODOSCALE_INSTANCE_PATH": str(instance),
            "TODOSCALE_ENV": "development",
            "TODOSCALE_RATE_LIMITS_ENABLED": "0",
            "TODOSCALE_REQUEST_LOG": "0",
            "TODOSCALE_LOG_LEVEL": "WARNING",
            **servers.SOCKETIO_ENV,
        }
        procs.run([str(procs.BIN / "todoscale"), "db", "upgrade"], env)
        owner_token, list_id, tokens = seed(instance, members)
        argv = servers.socketio_argv(f"127.0.0.1:{port}")
        argv[-1:-1] = extra_args or []
        server = procs.Server("socket.io", argv, env, out / "realtime-server.log")
        base = f"http://127.0.0.1:{port}"
        fleet = Fleet(base, client_processes)
        try:
            server.wait_ready(f"{base}/healthz")
            fleet.connect(tokens[:1])
            baseline = latencies(fleet, base, owner_token, list_id, events * 3)
            print(f"  latency, 1 client: {baseline}", flush=True)
            fleet.connect(tokens[1:members])
            loaded = latencies(fleet, base, owner_token, list_id, events)
            print(f"  latency, {fleet.connected} clients: {loaded}", flush=True)
            held = capacity(fleet, base, owner_token, list_id, tokens, levels)
        finally:
            fleet.close()
            server.stop()
    figures = {
        "server": " ".join(argv[2:]),
        "latency_1_client": baseline,
        f"latency_{members}_clients": loaded,
        "p50_ratio": _ratio(loaded["p50_ms"], baseline["p50_ms"]),
        "p99_ratio": _ratio(loaded["p99_ms"], baseline["p99_ms"]),
        "capacity": held,
    }
    print_table(figures, members)
    return figures


def _ratio(value: float | None, baseline: float | None) -> float | None:
    return value / baseline if value is not None and baseline else None


def _show(value: float | None, unit: str = "") -> str:
    return "failed" if value is None else f"{value:.{2 if unit else 1}f}{unit}"


def print_table(figures: dict[str, Any], members: int) -> None:
    """The markdown summary."""
    one, many = figures["latency_1_client"], figures[f"latency_{members}_clients"]
    print("\n## Socket.IO (one serving instance: gunicorn, one gevent worker, SQLite)\n")
    print("| clients | events | p50 ms | p99 ms | missing | p50 ratio | p99 ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row, ratios in ((one, (1.0, 1.0)), (many, (figures["p50_ratio"], figures["p99_ratio"]))):
        print(
            f"| {row['clients']} | {row['events']} | {_show(row['p50_ms'])} "
            f"| {_show(row['p99_ms'])} | {row['missing']} | {_show(ratios[0], 'x')} "
            f"| {_show(ratios[1], 'x')} |"
        )
    held = figures["capacity"]["held"]
    print(f"\nConcurrent clients held (all connected, all got the broadcast): {held}")


def main() -> None:
    """`python -m bench.realtime`: run the Socket.IO bench alone."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--levels", default="250,500,1000,2000,3000,4000,5000")
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--gunicorn-args", default="", help="extra gunicorn arguments")
    args = parser.parse_args()
    out = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S-realtime")
    out.mkdir(parents=True, exist_ok=True)
    figures = run(
        out=out,
        members=args.members,
        levels=[int(n) for n in args.levels.split(",")],
        events=args.events,
        client_processes=args.client_processes,
        extra_args=args.gunicorn_args.split(),
    )
    (out / "realtime.json").write_text(json.dumps(figures, indent=2))
    print(f"\nFigures and server log: {out}")


if __name__ == "__main__":
    main()
