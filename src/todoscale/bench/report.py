"""What people look at: the terminal table, BENCHMARKS.md (from the JSON alone), the chart,
and the machine's description."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from todoscale.bench.rungs import (
    ARTICLE_FIRST,
    ARTICLES,
    BY_KEY,
    MEINHELD,
    OBSERVE,
    OFFSET_NOTE,
    SEARCH,
    WRITES,
)

CHART_SIZE = (1200, 600)  # pixels
_DPI = 100
PACKAGES = ("flask", "werkzeug", "sqlalchemy", "gunicorn", "granian", "gevent")


def _first_line(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    return (done.stdout + done.stderr).strip().splitlines()[0]


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, Python, and the versions of the servers measured."""
    cpu = ""
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        kib = int(re.search(r"MemTotal:\s+(\d+)", info.read()).group(1))  # type: ignore[union-attr]
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(kib / 2**20, 1),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": {name: metadata.version(name) for name in PACKAGES},
        "wrk": _first_line(["wrk", "-v"]),
        "nginx": _first_line(["nginx", "-v"]),
    }


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per case and connection count: ours, its ratio to rung 1, the article's."""
    first = result["cases"].get("1", {})
    # Search is read against the reference read of the same set-up (rung 7's local cache).
    reference = result["cases"].get("7-local", {})
    out = []
    for key, by_c in result["cases"].items():
        case = BY_KEY[key]
        for c, fig in by_c.items():
            rps = fig["requests_per_second"]
            against = reference if case.rung in (SEARCH, OBSERVE) else first
            if key == "observe-off-uncached":
                against = result["cases"].get("5-page1", {})
            base = against.get(c, {}).get("requests_per_second", {}).get("median")
            out.append(
                {
                    "key": key,
                    "rung": {
                        0: "floor",
                        WRITES: "writes",
                        SEARCH: "search",
                        OBSERVE: "observe",
                    }.get(case.rung, case.rung),
                    "label": case.label,
                    "connections": int(c),
                    "rps": rps,
                    "ratio": rps["median"] / base if base and case.rung != WRITES else None,
                    "article": case.article,
                    "article_ratio": case.article / ARTICLE_FIRST if case.article else None,
                    **{k: fig[k] for k in ("p50_ms", "p99_ms", "socket_errors", "non_2xx")},
                    "probe_ms": fig["probe_ms"],
                    "cpu_us": fig["server_cpu_us_per_request"],
                    "served": fig["served_concurrency"],
                }
            )
    return out


def _cells(row: dict[str, Any]) -> list[str]:
    rps = row["rps"]
    return [
        str(row["rung"]),
        row["label"],
        str(row["connections"]),
        f"{rps['median']:,.0f} ({rps['min']:,.0f}-{rps['max']:,.0f})",
        "-" if row["ratio"] is None else f"{row['ratio']:.1f}x",
        "-" if row["article"] is None else f"{row['article']:,.0f}",
        "-" if row["article_ratio"] is None else f"{row['article_ratio']:.1f}x",
        f"{row['p50_ms']:.1f}",
        f"{row['p99_ms']:.1f}",
        str(row["socket_errors"]),
        str(row["non_2xx"]),
        "no answer" if row["probe_ms"] is None else f"{row['probe_ms']:.0f}",
        "-" if row["cpu_us"] is None else f"{row['cpu_us']:,.0f}",
        f"{row['served']:.0f}",
    ]


COLUMNS = [
    "rung", "case", "conns", "req/s median (min-max)", "x rung 1", "article req/s",
    "article x rung 1", "p50 ms", "p99 ms", "socket errors", "non-2xx", "probe ms",
    "server CPU us/req", "served conns",
]  # fmt: skip


def terminal(result: dict[str, Any]) -> None:
    """Print the table with rich."""
    from rich.console import Console  # the bench extra
    from rich.table import Table

    table = Table(title=f"The scaling ladder ({result['load_tool']})")
    for name in COLUMNS:
        if name == "case":
            table.add_column(name, no_wrap=True, max_width=44, overflow="ellipsis")
        else:
            table.add_column(name, justify="right")
    for row in rows(result):
        table.add_row(*_cells(row))
    console = Console(width=max(shutil.get_terminal_size().columns, 240))
    console.print(table)
    for key, why in result["skipped"].items():
        console.print(f"[yellow]skipped {key} ({BY_KEY[key].label}): {why}[/yellow]")


def chart(result: dict[str, Any], path: Path) -> None:
    """req/s per case on a log scale, min-max error bars, the articles' figures beside."""
    import matplotlib  # the bench extra

    matplotlib.use("Agg")
    from matplotlib import pyplot

    keys = list(result["cases"])
    counts = sorted({int(c) for by_c in result["cases"].values() for c in by_c})
    width = 0.8 / (len(counts) + 1)
    figure, axes = pyplot.subplots(figsize=(CHART_SIZE[0] / _DPI, CHART_SIZE[1] / _DPI), dpi=_DPI)
    for n, c in enumerate(counts):
        xs, medians, low, high = [], [], [], []
        for i, key in enumerate(keys):
            fig = result["cases"][key].get(str(c))
            if fig:
                rps = fig["requests_per_second"]
                xs.append(i + n * width)
                medians.append(rps["median"])
                low.append(rps["median"] - rps["min"])
                high.append(rps["max"] - rps["median"])
        axes.bar(xs, medians, width, yerr=[low, high], capsize=2, label=f"todoscale here, c{c}")
    articles = [(i, a) for i, key in enumerate(keys) if (a := BY_KEY[key].article) is not None]
    axes.bar(
        [i + len(counts) * width for i, _ in articles],
        [a for _, a in articles],
        width,
        color="grey",
        label="the articles (their machine)",
    )
    axes.set_yscale("log")
    axes.set_ylabel("requests per second (log scale)")
    axes.set_xticks([i + width * len(counts) / 2 for i in range(len(keys))], keys)
    axes.tick_params(axis="x", labelrotation=30)
    axes.set_title("The scaling ladder: one todo page over 10,000 rows")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)
    pyplot.close(figure)


def _plans(result: dict[str, Any]) -> list[str]:
    lines = ["## The reference read's query plan", ""]
    for name, plan in result["plans"].items():
        lines += [f"- {name}: `{' / '.join(plan['plan'])}`"]
    for sql in dict.fromkeys(plan["sql"].strip() for plan in result["plans"].values()):
        lines += ["", "```sql", sql, "```"]
    return [*lines, ""]


def _load(result: dict[str, Any], when: str) -> str:
    return "/".join(f"{x:.1f}" for x in result["load_average"][when])


def _median(result: dict[str, Any], key: str, c: str) -> float | None:
    fig = result["cases"].get(key, {}).get(c)
    return None if fig is None else float(fig["requests_per_second"]["median"])


def shape(result: dict[str, Any]) -> list[str]:
    """The issue's goal, read from the figures: rung 8 (embedded) against every earlier rung,
    its errors at the highest connection count, and its ratio to rung 1 beside the articles'."""
    if "8-embedded" not in result["cases"]:
        return []
    lines = ["## The shape", ""]
    articles = ARTICLES[7] / ARTICLE_FIRST
    for c in result["cases"]["8-embedded"]:
        shipped = _median(result, "8-embedded", c) or 0.0
        earlier = {
            key: rps
            for key in result["cases"]
            if 0 < BY_KEY[key].rung < 8 and (rps := _median(result, key, c)) is not None
        }
        above = [key for key, rps in earlier.items() if rps >= shipped]
        first = _median(result, "1", c)
        fig = result["cases"]["8-embedded"][c]
        ratio = f"{shipped / first:.1f}x rung 1" if first else "rung 1 not measured"
        verdict = (
            "above every earlier rung measured"
            if not above
            else f"NOT above rung(s) {', '.join(above)}"
        )
        lines.append(
            f"- c{c}: `todoscale run` {shipped:,.0f} req/s, {ratio} (the articles' last rung: "
            f"{articles:.0f}x their first); {verdict}; {fig['socket_errors']} socket errors, "
            f"{fig['non_2xx']} non-2xx."
        )
    return [*lines, ""]


def observe(result: dict[str, Any]) -> list[str]:
    """The always-on layer's goals, read from the figures: the reference read with the layer
    on (7-local) against off, with a profile armed elsewhere, its CPU, the scrape's time."""
    cases = result["cases"]
    if "observe-off" not in cases and "in_process" not in result:
        return []
    lines = ["## The always-on layer", ""]
    for c in cases.get("observe-off", {}):
        on, off = _median(result, "7-local", c), _median(result, "observe-off", c)
        profiled = _median(result, "observe-profiled", c)
        if on and off:
            lines.append(
                f"- c{c}: the reference read as shipped (7-local) with the layer on {on:,.0f} "
                f"req/s, off {off:,.0f}: on = {on / off:.3f}x off (goal >= 0.95x)."
            )
        bare_on = _median(result, "5-page1", c)
        bare_off = _median(result, "observe-off-uncached", c)
        if bare_on and bare_off:
            lines.append(
                f"- c{c}: cache off (5-page1), on {bare_on:,.0f} req/s, off {bare_off:,.0f}: "
                f"on = {bare_on / bare_off:.3f}x off."
            )
        if on and profiled:
            lines.append(
                f"- c{c}: a profile armed on another endpoint {profiled:,.0f} req/s: "
                f"{(1 - profiled / on) * 100:+.1f} % lost against the layer on (goal <= 1 %)."
            )
    figures = result.get("in_process", {})
    if "layer" in figures:
        layer = figures["layer"]
        lines.append(
            f"- In-process (`python -m {' '.join(layer['command'])}`), the reference read's CPU "
            f"per request: {layer['on_us']} us on, {layer['off_us']} us off; the layer "
            f"{layer['layer_us']} us (median of {layer['rounds']} interleaved rounds of "
            f"{layer['requests_per_round']:,} requests, {layer.get('threads', 1)} thread(s) "
            f"driving each app; goal <= 20 us). With a profile "
            f"armed on another endpoint: {layer['armed_us']} us, "
            f"{layer['armed_cost_percent']:+.2f} % (goal <= 1 %)."
        )
    if "scrape" in figures:
        lines.append(_scrape_line(figures["scrape"]))
    return [*lines, ""]


def memory(result: dict[str, Any]) -> list[str]:
    """Each server's proportional set size, idle (started, before any load) and after the
    runs: every process of its groups, `todoscale run`'s supervisord, web, Socket.IO, worker
    and beat included."""
    figures = result.get("memory")
    if not figures:
        return []
    uses: dict[str, list[str]] = {}
    for case in BY_KEY.values():
        uses.setdefault(case.setup, []).append(case.key)
    lines = [
        "## Memory",
        "",
        "Proportional set size (PSS, `/proc/<pid>/smaps_rollup`: a page shared by n processes "
        "counts 1/n to each) of every process of each server, idle (ready, before any load) "
        "and after every run.",
        "",
        "| server | rows | processes | PSS idle | PSS after |",
        "| --- | --- | --- | --- | --- |",
    ]
    for setup, idle in figures["idle"].items():
        after = figures["after"].get(setup, {})
        rows = ", ".join(k for k in uses.get(setup, []) if k in result["cases"])
        lines.append(
            f"| {setup} | {rows} | {idle['processes']} | {_mib(idle['pss_bytes'])} | "
            f"{_mib(after.get('pss_bytes'))} |"
        )
    return [*lines, ""]


def _mib(size: int | None) -> str:
    return "-" if size is None else f"{size / 2**20:.1f} MiB"


def markdown(result: dict[str, Any], chart_name: str) -> str:
    """BENCHMARKS.md from the result's JSON alone."""
    m = result["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(result["started"]))
    lines = [
        "# Benchmarks: the scaling ladder",
        "",
        f"Measured by `{result['command']}` on {when}; every run is in `{result['json']}` "
        f"(`todoscale bench --from-json {result['json']}` redoes this page and its chart from "
        "it; `make bench` measures afresh). Figures are this machine's: read the shape (which "
        "step pays, by how much), not the absolute numbers.",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, {m['system']}, "
        f"Python {m['python']}; {versions}; {m['wrk'] or 'no wrk'}; {m['nginx'] or 'no nginx'}. "
        f"Load average (1, 5, 15 min) at the start {_load(result, 'start')}, at the end "
        f"{_load(result, 'end')}: other work on this machine shares its cores, and the load "
        "generator runs on the same cores as the servers.",
        "",
        f"Load: {result['load_tool']}, {result['runs']} interleaved run(s) of "
        f"{result['seconds']} s per case after a {result['warmup']} s warm-up (0: none, a smoke "
        "run); medians, "
        "min-max in brackets; the probe is one request on a fresh connection halfway through "
        'a run ("no answer": none by a second after the run ended, at most 5 s); served '
        "conns = req/s x mean latency (far below the connections: starvation).",
        "",
        f"![req/s per rung]({chart_name})",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + " --- |" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows(result)]
    lines += [""]
    for key, why in result["skipped"].items():
        lines += [f"- Not measured: rung {key} ({BY_KEY[key].label}): {why}."]
    lines += [f"- {note}" for note in (MEINHELD, OFFSET_NOTE, *result["notes"])]
    lines += [
        "- The articles' figures are theirs, from their machine; the ratio columns compare "
        "each ladder to its own first rung.",
        "",
        *shape(result),
        *observe(result),
        *memory(result),
        *_plans(result),
    ]
    return "\n".join(lines)


def _scrape_line(scrape: dict[str, Any]) -> str:
    """The scrape's figures, those the run measured (earlier runs have fewer)."""
    restarts = scrape["restarts"]
    text = (
        f"- `/metrics` behind {scrape['live_workers']} live workers and {restarts} restarts "
        f"(`python -m {' '.join(scrape['command'])}`; {scrape['series']:,} series, "
        f"{scrape['page_bytes']:,} bytes): {scrape['median_ms']} ms median "
        f"({scrape['min_ms']}-{scrape['max_ms']}, {scrape['median_cpu_ms']} ms CPU) over "
        f"{scrape['runs']} scrapes (goal < 50 ms)"
    )
    if "janitor_ms" in scrape:
        text += (
            f"; after {restarts} workers died at once, the first scrape once a live worker's "
            f"janitor had folded their files (its round: {scrape['janitor_ms']} ms, "
            f"{scrape['janitor_cpu_ms']} ms CPU, off the scrape's path) {scrape['first_ms']} ms "
            f"({scrape['first_cpu_ms']} ms CPU) (goal < 50 ms)"
        )
    else:  # a run before the janitor: its first scrape folded the dead workers' files itself
        text += (
            f"; the first scrape, which folds the {restarts} dead workers' "
            f"{scrape['files_before'] - scrape['files_after']} files into the archives, "
            f"{scrape['first_ms']} ms ({scrape['first_cpu_ms']} ms CPU)"
        )
    if "unswept_first_ms" in scrape:
        text += (
            f"; a scrape that comes before the janitor's round folds the "
            f"{scrape['files_before'] - scrape['files_after']} files itself: "
            f"{scrape['unswept_first_ms']} ms ({scrape['unswept_first_cpu_ms']} ms CPU)"
        )
    if "race_ms" in scrape:
        text += (
            f"; a scrape while another process's janitor folds {restarts} deaths reads their "
            f"files as they are: {scrape['race_ms']} ms ({scrape['race_cpu_ms']} ms CPU)"
        )
    return text + "."
