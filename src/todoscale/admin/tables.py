"""Figures for the console's pages, merged from every process's statistics and files."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from todoscale.ops import groups, stats
from todoscale.ops.exposition import proc_figures
from todoscale.ops.metrics import RequestMetrics

SORTS = ("endpoint", "count", "errors", "p50", "p95", "p99", "max", "sql")


@dataclass
class EndpointRow:
    """One endpoint and method over a window."""

    endpoint: str
    method: str
    count: int
    errors: float  # share of 5xx
    p50: float
    p95: float
    p99: float
    max: float
    sql: float  # statements per request


def merged(root: Path, metrics: RequestMetrics, seconds: float) -> tuple[dict[Any, Any], list[Any]]:
    """Every process's rows and slow requests of the last `seconds`, this process's unwritten
    minute included."""
    total: dict[tuple[str, str], list[Any]] = {}
    slow: list[dict[str, Any]] = []
    for line in stats.lines(root, seconds):
        for endpoint, method, *row in line["rows"]:
            stats.merge_into(total, endpoint, method, row)
        slow += line["slow"]
    rows, own_slow = metrics.recorder.peek()
    for (endpoint, method), row in rows.items():
        stats.merge_into(total, endpoint, method, row)
    slow += [vars(item) for item in own_slow]
    return total, slow


def endpoint_rows(total: dict[tuple[str, str], list[Any]], sort: str) -> list[EndpointRow]:
    """The table of the overview, sorted (largest first, names A-Z)."""
    rows = []
    for (endpoint, method), row in total.items():
        count = row[stats.COUNT]
        buckets = row[stats.BUCKETS]
        rows.append(
            EndpointRow(
                endpoint=endpoint,
                method=method,
                count=count,
                errors=row[stats.ERRORS] / count if count else 0.0,
                p50=stats.quantile(buckets, 0.5),
                p95=stats.quantile(buckets, 0.95),
                p99=stats.quantile(buckets, 0.99),
                max=row[stats.MAX],
                sql=row[stats.SQL] / count if count else 0.0,
            )
        )
    if sort == "endpoint":
        return sorted(rows, key=lambda r: (r.endpoint, r.method))
    return sorted(rows, key=lambda r: getattr(r, sort), reverse=True)


def series(root: Path, seconds: float, points: int) -> list[tuple[float, int, float]]:
    """Requests and p95 per slot over the window (`points` slots, oldest first), all
    endpoints together; this process's unwritten minute is left out."""
    now = time.time()
    width = seconds / points
    slots: list[dict[int, int]] = [{} for _ in range(points)]
    for line in stats.lines(root, seconds):
        index = min(points - 1, max(0, int((line["t"] - (now - seconds)) / width)))
        for _endpoint, _method, *row in line["rows"]:
            for bucket, count in row[stats.BUCKETS].items():
                slots[index][int(bucket)] = slots[index].get(int(bucket), 0) + count
    return [
        (now - seconds + (i + 1) * width, sum(slot.values()), stats.quantile(slot, 0.95))
        for i, slot in enumerate(slots)
    ]


def processes(root: Path) -> list[dict[str, Any]]:
    """Every process of every group on this host: pid, server, uptime, requests, memory."""
    from prometheus_client.mmap_dict import MmapedDict

    found = []
    boot = time.time() - _uptime()
    for folder in groups.groups(root):
        for path in sorted(folder.glob("process_*.json")):
            info = _read_json(path)
            pid = int(info.get("pid", 0))
            figures = proc_figures(pid) if pid else None
            if figures is None:
                continue
            served = 0.0
            histogram = folder / f"histogram_{pid}.db"
            if histogram.exists():
                for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(histogram)):
                    if (
                        key.startswith('["todoscale_http_request_duration_seconds"')
                        and '"le"' in key
                    ):
                        served += value
            found.append(
                {
                    "service": folder.name,
                    "pid": pid,
                    "kind": info.get("kind", "?"),
                    "uptime": time.time() - float(info.get("started", boot)),
                    "requests": int(served),
                    "cpu": figures[0],
                    "rss": figures[1],
                }
            )
    return found


def _uptime() -> float:
    with open("/proc/uptime", encoding="ascii") as handle:
        return float(handle.read().split()[0])


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data
