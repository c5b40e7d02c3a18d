"""Summaries of repeated runs: medians, spreads and ratios, as a table and as JSON."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Any

from todoscale.bench.load import Result


def summarize(runs: list[Result]) -> dict[str, Any]:
    """Median and min-max of each figure over `runs`; failures summed."""

    def spread(values: list[float]) -> dict[str, float]:
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    probes = [r.probe_ms for r in runs if r.probe_ms is not None]
    cpu = [r.server_cpu_s / r.requests * 1e6 for r in runs if r.requests]
    return {
        "requests_per_second": spread([r.requests_per_second for r in runs]),
        "p50_ms": statistics.median(r.p50_ms for r in runs),
        "p99_ms": statistics.median(r.p99_ms for r in runs),
        "served_concurrency": statistics.median(r.served_concurrency for r in runs),
        "socket_errors": sum(r.socket_errors for r in runs),
        "non_2xx": sum(r.non_2xx for r in runs),
        "probe_ms": statistics.median(probes) if probes else None,
        "probes_unanswered": len(runs) - len(probes),
        # None when no request was answered in any run: a figure that cannot be computed.
        "server_cpu_us_per_request": statistics.median(cpu) if cpu else None,
        "runs": [asdict(r) for r in runs],
    }


def row(label: str, connections: int, summary: dict[str, Any], baseline: float | None) -> str:
    """One markdown table row."""
    rps = summary["requests_per_second"]
    ratio = f"{rps['median'] / baseline:.2f}x" if baseline else "1.00x (baseline)"
    probe = "no answer" if summary["probe_ms"] is None else f"{summary['probe_ms']:.1f}"
    cpu = summary["server_cpu_us_per_request"]
    return (
        f"| {label} | {connections} | {rps['median']:,.0f} ({rps['min']:,.0f}-"
        f"{rps['max']:,.0f}) | {ratio} | {summary['p50_ms']:.1f} | {summary['p99_ms']:.1f} | "
        f"{summary['socket_errors']} | {summary['non_2xx']} | {probe} | "
        f"{'-' if cpu is None else f'{cpu:.0f}'} |"
    )


HEADER = (
    "| case | conns | req/s median (min-max) | vs baseline | p50 ms | p99 ms | socket errors "
    "| non-2xx | probe ms | server CPU us/req |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)
