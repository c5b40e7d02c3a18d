"""`todoscale bench`: the articles' scaling ladder, replayed on this machine."""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from todoscale.bench import ladder, load, report, rungs
from todoscale.config import Settings

EXTRA = "pip install 'todoscale[bench]'"


def _connections(value: str) -> list[int]:
    try:
        counts = [int(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not comma-separated numbers") from exc
    if not counts or min(counts) < 1:
        raise click.BadParameter("give at least one connection count, each 1 or more")
    return counts


def _load_tool(python_load: bool) -> bool:
    """Whether the Python load generator stands in for wrk (and say so when wrk is missing)."""
    if python_load or shutil.which("wrk"):
        return python_load
    click.secho(
        f"{load.WRK_MISSING}\nFalling back to a Python load generator: its figures are marked "
        "as such and are not comparable with wrk's.",
        fg="yellow",
        err=True,
    )
    return True


def _publish(result: dict[str, Any], folder: Path | None, markdown: Path | None) -> None:
    """The chart and BENCHMARKS.md in `folder` and at `markdown`; the terminal table."""
    if folder is not None:
        report.chart(result, folder / "ladder.png")
        (folder / "BENCHMARKS.md").write_text(report.markdown(result, "ladder.png"))
    if markdown is not None:  # with its chart and its JSON beside it, so it can be redone
        chart, data = markdown.with_suffix(".png"), markdown.with_suffix(".json")
        report.chart(result, chart)
        beside = {**result, "json": data.name}
        if data.resolve() != Path(result["json"]).resolve():
            data.write_text(json.dumps(beside, indent=2))
        markdown.write_text(report.markdown(beside, chart.name))
    report.terminal(result)
    if folder is not None:
        click.echo(f"Figures, server logs, chart and BENCHMARKS.md: {folder}")


def _in_process(quick: bool) -> dict[str, Any]:
    """The always-on layer's CPU per request and the scrape behind 100 restarts, each measured
    in a process of its own (multiprocess mode is chosen before prometheus_client loads)."""
    figures = {}
    # As many threads as each granian worker of `todoscale serve` runs the app in.
    threads = str(Settings.model_fields["BLOCKING_THREADS"].default)
    for name, args in (
        ("layer", ["--rounds", "3" if quick else "7", "--threads", threads]),
        ("scrape", ["--runs", "3" if quick else "9"]),
    ):
        argv = [sys.executable, "-m", f"todoscale.bench.{name}", *args]
        click.echo(f"in-process: {shlex.join(['python', *argv[1:]])}", err=True)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode:
            raise click.ClickException(f"{name} failed:\n{done.stderr[-2000:]}")
        figures[name] = {**json.loads(done.stdout.splitlines()[-1]), "command": argv[2:]}
    return figures


@click.command("bench")
@click.option(
    "--quick", is_flag=True, help="1 run of 3 s per case, no warm-up, a subset of the rungs."
)
@click.option(
    "--rungs", "spec", default=None, help="Comma-separated: 1-8, case keys, floors, writes, search."
)
@click.option("--runs", type=click.IntRange(1, 20), default=None, help="Runs per case [3].")
@click.option("--seconds", type=click.IntRange(1, 120), default=None, help="Per run [10].")
@click.option("--connections", default="100,1000", show_default=True, help="Comma-separated.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Each run writes <out>/<timestamp>/ (JSON, server logs, chart, BENCHMARKS.md).",
)
@click.option(
    "--markdown",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write BENCHMARKS.md here, with its chart beside it.",
)
@click.option(
    "--from-json",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Measure nothing: redo the table, chart and BENCHMARKS.md from a run's ladder.json.",
)
@click.option("--python-load", is_flag=True, help="Use the Python load generator, not wrk.")
@click.option("--postgres-url", default=ladder.POSTGRES_URL, show_default=True)
@click.option("--redis-url", default=ladder.REDIS_URL, show_default=True)
def bench(
    quick: bool,
    spec: str | None,
    runs: int | None,
    seconds: int | None,
    connections: str,
    out: Path,
    markdown: Path | None,
    from_json: Path | None,
    python_load: bool,
    postgres_url: str,
    redis_url: str,
) -> None:
    """Replay the articles' scaling ladder on scratch copies of the reference workload."""
    missing = [name for name in ("matplotlib", "rich") if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(f"{' and '.join(missing)} missing: {EXTRA}")
    if from_json is not None:
        # BENCHMARKS.json -> BENCHMARKS.md and BENCHMARKS.png beside it (or at --markdown).
        _publish(json.loads(from_json.read_text()), None, markdown or from_json.with_suffix(".md"))
        return
    try:
        cases = rungs.choose(spec, quick=quick)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--rungs") from exc
    # SIGTERM unwinds like Ctrl-C: every server started so far is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = out / time.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=False)
    options = ladder.Options(
        cases=cases,
        runs=runs or (1 if quick else 3),
        seconds=seconds or (3 if quick else 10),
        connections=_connections(connections),
        warmup=0 if quick else 2,
        out=folder,
        postgres_url=postgres_url,
        redis_url=redis_url,
        python_load=_load_tool(python_load),
    )
    result = ladder.run(options)
    if any(case.rung == rungs.OBSERVE for case in cases):
        result["in_process"] = _in_process(quick)
    result |= {
        "command": shlex.join(["todoscale", *sys.argv[1:]]),
        "json": str(folder / "ladder.json"),
        "machine": report.machine(),
        "load_tool": load.PYTHON_TOOL if options.python_load else "wrk",
        "runs": options.runs,
        "seconds": options.seconds,
        "warmup": options.warmup,
        "connections": options.connections,
        "chosen": [case.key for case in cases],
    }
    (folder / "ladder.json").write_text(json.dumps(result, indent=2))
    _publish(result, folder, markdown)
    if result["processes_left"]:
        raise click.ClickException(f"processes left running: {result['processes_left']}")
