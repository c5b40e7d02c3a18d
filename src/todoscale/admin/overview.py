"""The console's reading pages: per-endpoint statistics, slow requests, processes, live."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue

from todoscale.admin import tables
from todoscale.admin.access import root
from todoscale.admin.charts import line_chart
from todoscale.ops import stats
from todoscale.ops.metrics import of
from todoscale.realtime import monitor

bp = Blueprint("overview", __name__)

CHART_POINTS = {"5m": 5, "1h": 60, "1d": 96}
SLOWEST_SHOWN = 50


def _window() -> str:
    window = request.args.get("window", "5m")
    return window if window in stats.WINDOWS else "5m"


@bp.get("/")
def index() -> ResponseReturnValue:
    """Per-endpoint statistics over the chosen window, sortable, with two charts."""
    window = _window()
    sort = request.args.get("sort", "count")
    sort = sort if sort in tables.SORTS else "count"
    seconds = stats.WINDOWS[window]
    total, _slow = tables.merged(root(), of(current_app), seconds)
    rows = tables.endpoint_rows(total, sort)
    points = tables.series(root(), seconds, CHART_POINTS[window])
    return render_template(
        "admin/index.html",
        rows=rows,
        window=window,
        windows=list(stats.WINDOWS),
        sort=sort,
        sorts=tables.SORTS,
        requests_chart=line_chart([float(count) for _t, count, _p in points]),
        latency_chart=line_chart([p95 * 1000 for _t, _count, p95 in points]),
    )


@bp.get("/slow")
def slow() -> ResponseReturnValue:
    """The slowest recent requests with their request ids (to find in the JSON log)."""
    window = _window()
    _total, found = tables.merged(root(), of(current_app), stats.WINDOWS[window])
    found.sort(key=lambda item: item["seconds"], reverse=True)
    return render_template(
        "admin/slow.html",
        requests=found[:SLOWEST_SHOWN],
        window=window,
        windows=list(stats.WINDOWS),
    )


@bp.get("/processes")
def processes() -> ResponseReturnValue:
    """Every process of this host: pid, server, uptime, requests served, memory."""
    return render_template("admin/processes.html", processes=tables.processes(root()))


@bp.get("/live")
def live() -> ResponseReturnValue:
    """Live connections and recent events of every Socket.IO process on this host."""
    found = monitor.read_all(root())
    connections = [c | {"pid": p["pid"]} for p in found for c in p["connections"]]
    events = sorted(
        (e | {"pid": p["pid"]} for p in found for e in p["events"]),
        key=lambda e: e["at"],
        reverse=True,
    )
    return render_template("admin/live.html", connections=connections, events=events[:100])
