"""`python -m bench`: the embedded and scaled-out reads, realtime and jobs suites; the
articles' ladder itself is `todoscale bench` (`make bench`)."""

from __future__ import annotations

import argparse
import json
import time

from bench import ROOT, cluster, embedded, jobs, realtime
from todoscale.bench import procs


def main() -> None:
    """Parse the options and run each rung."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median reported)")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", default="100,1000", help="comma-separated")
    parser.add_argument("--quick", action="store_true", help="1 run of 3 s: a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.seconds = 1, 3
    procs.raise_fd_limit()
    out = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    connections = [int(c) for c in args.connections.split(",")]
    figures = {
        "embedded": embedded.run(
            runs=args.runs, seconds=args.seconds, connections=connections, out=out
        )
    }
    figures["cluster"] = cluster.run(
        runs=args.runs,
        seconds=args.seconds,
        connections=connections,
        out=out,
        embedded_figures=figures["embedded"],
    )
    figures["realtime"] = (
        realtime.run(out=out, members=100, levels=[100, 250], events=5)
        if args.quick
        else realtime.run(out=out)
    )
    figures["jobs"] = jobs.run(out=out, runs=args.runs)
    (out / "figures.json").write_text(json.dumps(figures, indent=2))
    print(f"\nFigures and server logs: {out}")


if __name__ == "__main__":
    main()
