"""CPU per request of the always-on layer, in-process: the reference read (bearer token,
newest 10 of 10,000) driven through the WSGI callable of two apps on the same seeded
instance, one with TODOSCALE_OBSERVE on and one off, in interleaved rounds; and the app
with the layer on while a profile order is armed on another endpoint (the lists).

Run as its own process (`python -m todoscale.bench.layer`): like a server's worker it runs
in multiprocess mode (values in memory-mapped files), which must be chosen before
prometheus_client is imported. The figure is the median over rounds of (CPU per request
on) - (CPU per request off), `time.process_time`, no network, no server. With `--threads N`
each round drives an app from N threads at once, as a granian worker's blocking threads do:
the layer's lock and the GIL are then contended, which one thread never shows.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from todoscale.ops import groups


def _app(instance: Path, observe: bool) -> Any:
    from todoscale import create_app
    from todoscale.bench import workload

    settings = {**workload.environment(instance), "TODOSCALE_OBSERVE": "1" if observe else "0"}
    os.environ.update(settings)
    return create_app({"OBSERVE": observe, "REQUEST_LOG": False})


def _token(app: Any) -> str:
    from todoscale.bench import workload

    creds = base64.b64encode(f"{workload.USERNAME}:{workload.PASSWORD}".encode()).decode()
    response = app.test_client().post("/api/v1/tokens", headers={"Authorization": f"Basic {creds}"})
    return str(response.get_json()["token"])


def _environ(token: str) -> dict[str, Any]:
    from todoscale.bench import workload

    path, _, query = workload.READ_PATH.partition("?")
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "HTTP_AUTHORIZATION": f"Bearer {token}",
    }  # fmt: skip


def _drive(app: Any, base: dict[str, Any], count: int) -> float:
    """CPU seconds per request over `count` requests."""
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> None:
        status.append(line)

    started = time.process_time()
    for _ in range(count):
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(b"")
        body = app(environ, start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
    took = time.process_time() - started
    assert status[-1].startswith("200"), status[-1]
    return took / count


def _threaded(app: Any, base: dict[str, Any], count: int, threads: int) -> float:
    """CPU seconds per request over `count` requests from each of `threads` threads at once."""
    if threads == 1:
        return _drive(app, base, count)
    import threading

    started = time.process_time()
    workers = [threading.Thread(target=_drive, args=(app, base, count)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return (time.process_time() - started) / (count * threads)


def _armed(app: Any, environ: dict[str, Any], requests: int, threads: int = 1) -> float:
    """CPU per request while a profile order is armed on another endpoint."""
    from todoscale.ops import control, metrics

    controls = metrics.of(app).controls
    control.arm(controls.root, "/api/v1/lists", control.MAX_PROFILES, 600, "bench")
    controls.poll()  # as the control thread would within a second
    try:
        return _threaded(app.wsgi_app, environ, requests, threads)
    finally:
        control.disarm(controls.root)
        controls.poll()


def run(rounds: int, requests: int, threads: int = 1) -> dict[str, Any]:
    """Seed, build both apps, drive them in turn; the figures (microseconds)."""
    scratch = Path(tempfile.mkdtemp(prefix="todoscale-layer-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)  # after the apps are done
    groups.start_group(scratch / "metrics", "web-layer", os.environ)  # before any import
    os.environ["TODOSCALE_METRICS_DIR"] = str(scratch / "metrics")
    from todoscale.bench import workload

    instance = scratch / "instance"
    workload.seed(instance)
    on, off = _app(instance, True), _app(instance, False)
    environ = {True: _environ(_token(on)), False: _environ(_token(off))}
    apps = {True: on.wsgi_app, False: off.wsgi_app}
    for observe in (True, False):  # warm-up: caches filled, first-request set-up done
        _drive(apps[observe], environ[observe], requests)
    per: dict[bool, list[float]] = {True: [], False: []}
    armed: list[float] = []
    for _ in range(rounds):
        for observe in (True, False):
            per[observe].append(_threaded(apps[observe], environ[observe], requests, threads))
        armed.append(_armed(on, environ[True], requests, threads))
    deltas = [a - b for a, b in zip(per[True], per[False], strict=True)]
    costs = [a / b - 1 for a, b in zip(armed, per[True], strict=True)]
    return {
        "armed_us": round(statistics.median(armed) * 1e6, 1),
        "armed_cost_percent": round(statistics.median(costs) * 100, 2),
        "rounds": rounds,
        "threads": threads,
        "requests_per_round": requests,
        "on_us": round(statistics.median(per[True]) * 1e6, 1),
        "off_us": round(statistics.median(per[False]) * 1e6, 1),
        "layer_us": round(statistics.median(deltas) * 1e6, 1),
        "layer_us_each_round": [round(d * 1e6, 1) for d in deltas],
    }


def main() -> None:
    """Print the figures as JSON (the scratch folder removed at exit)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds [7]")
    parser.add_argument("--requests", type=int, default=2000, help="requests a round [2000]")
    parser.add_argument("--threads", type=int, default=1, help="threads driving each app [1]")
    args = parser.parse_args()
    if "prometheus_client" in sys.modules:
        raise SystemExit("run this as its own process: python -m todoscale.bench.layer")
    print(json.dumps(run(args.rounds, args.requests, args.threads)))


if __name__ == "__main__":
    main()
