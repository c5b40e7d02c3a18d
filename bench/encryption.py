"""What encrypting todo notes costs the reference read: `python -m bench.encryption`.

Two copies of the reference workload (10,000 todos, each with a 166-character note), one
stored in clear and one sealed with TODOSCALE_ENCRYPTION_KEYS, each served by
`todoscale serve` (granian) with the local cache on and off; the four cases are measured
interleaved, and each encrypted case is reported against its plain twin of the same run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from bench import ROOT, embedded
from todoscale.bench import procs
from todoscale.bench import summary as report

NOTES = "Buy milk, eggs and bread; call the plumber about the kitchen sink before Friday. " * 2
_FILL_NOTES = """
from sqlalchemy import bindparam, select, update
from todoscale import create_app
from todoscale.extensions import db
from todoscale.models import Todo
table = Todo.__table__
with create_app().app_context():
    ids = db.session.scalars(select(table.c.id)).all()
    query = update(table).where(table.c.id == bindparam("tid")).values(notes=bindparam("n"))
    db.session.execute(query, [{"tid": each, "n": NOTES} for each in ids])
    db.session.commit()
"""


def _prepare(instance: Path, env: dict[str, str]) -> None:
    embedded.prepare(instance, env)
    procs.run([str(procs.BIN / "python"), "-c", f"NOTES = {NOTES!r}\n{_FILL_NOTES}"], env)


def run(*, runs: int, seconds: int, connections: int, out: Path) -> dict[str, Any]:
    """Measure the four cases; print the table; return the figures."""
    key = Fernet.generate_key().decode()
    servers: dict[str, procs.Server] = {}
    cases: dict[str, tuple[str, dict[str, str]]] = {}
    with tempfile.TemporaryDirectory(prefix="todoscale-bench-crypto-") as tmp:
        plain, sealed = Path(tmp) / "plain", Path(tmp) / "sealed"
        base = {"TODOSCALE_ENV": "development", "TODOSCALE_REQUEST_LOG": "0"}
        keyed = {"TODOSCALE_ENCRYPTION_KEYS": key}
        _prepare(plain, {**base, "TODOSCALE_INSTANCE_PATH": str(plain)})
        _prepare(sealed, {**base, "TODOSCALE_INSTANCE_PATH": str(sealed), **keyed})
        specs = {
            "plain, cache on": (plain, {}),
            "encrypted, cache on": (sealed, keyed),
            "plain, cache off": (plain, {"TODOSCALE_LOCAL_CACHE": "off"}),
            "encrypted, cache off": (sealed, {**keyed, "TODOSCALE_LOCAL_CACHE": "off"}),
        }
        try:
            for name, (instance, extra) in specs.items():
                port = embedded.free_port()
                env = {**base, "TODOSCALE_INSTANCE_PATH": str(instance), "PORT": str(port), **extra}
                log = out / f"crypto-{name.replace(', ', '-').replace(' ', '_')}.log"
                server = servers[name] = procs.Server(
                    name, [str(procs.BIN / "todoscale"), "serve"], env, log
                )
                url = f"http://127.0.0.1:{port}"
                server.wait_ready(f"{url}/healthz")
                bearer = {"Authorization": f"Bearer {embedded.token(url, 'user1')}"}
                cases[name] = (f"{url}{embedded.READ_PATH}", bearer)
            first = next(iter(servers.values()))
            figures = embedded.measure(
                cases, first, connections=connections, runs=runs, seconds=seconds, servers=servers
            )
        finally:
            for server in servers.values():
                server.stop()
    _print(figures, connections)
    return figures


def _print(figures: dict[str, Any], connections: int) -> None:
    print(report.HEADER)
    for name, summary in figures.items():
        twin = name.replace("encrypted", "plain")
        baseline = None if twin == name else figures[twin]["requests_per_second"]["median"]
        print(report.row(name, connections, summary, baseline))


def main() -> None:
    """Parse the options, measure, save the JSON next to the servers' logs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=100)
    args = parser.parse_args()
    procs.raise_fd_limit()
    out = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S-crypto")
    out.mkdir(parents=True, exist_ok=True)
    figures = run(runs=args.runs, seconds=args.seconds, connections=args.connections, out=out)
    (out / "figures.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
