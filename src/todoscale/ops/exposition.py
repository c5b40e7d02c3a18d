"""`GET /metrics`: every process of this host in one Prometheus text page, and who may read it.

The page merges the files of every process group under the metrics folder (each series
labelled with its group as `service`), after a sweep of dead workers (`groups`); adds this
process's own registry when it runs outside any group (tests, `flask run`); and adds what
no single process knows: per-process CPU and memory read from /proc, the metrics files
themselves, and jobs and reminders counted from the database (right on every broker,
the embedded queue included). Prometheus should scrape one target per host.

Access: clients on loopback in the embedded default (`METRICS_LOOPBACK`), else only the
scrape token, an admin's bearer token or an admin's session; everyone else gets 404.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, request
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from todoscale.instruments import LATENCY_BUCKETS
from todoscale.ops import groups, merge
from todoscale.ops.metrics import of
from todoscale.services import monitoring
from todoscale.services.accounts import user_for_token

bp = Blueprint("metrics", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JOB_CACHE_SECONDS = 5.0
JOBS_EXTENSION = "todoscale.jobfigures"
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def may_read() -> bool:
    """Whether this request may read the metrics (see the module's docstring)."""
    config = current_app.config
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        expected = config["METRICS_TOKEN"]
        if expected and hmac.compare_digest(token.encode(), str(expected).encode()):
            return True
        user = user_for_token(token)
        return user is not None and bool(user.is_admin)
    if config["METRICS_LOOPBACK"] and _loopback(request.remote_addr):
        return True
    user = g.get("user")
    return user is not None and bool(user.is_admin)


def _labelled(collected: Iterable[Metric], service: str) -> list[Metric]:
    metrics = list(collected)
    for metric in metrics:
        metric.samples = [
            Sample(s.name, {**s.labels, "service": service}, s.value, s.timestamp, s.exemplar)
            for s in metric.samples
        ]
    return metrics


def proc_figures(pid: int) -> tuple[float, int] | None:
    """CPU seconds and resident bytes of a live process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
            resident = int(handle.read().split()[1]) * _PAGE
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS, resident


def process_metrics(folders: list[Path]) -> list[Metric]:
    """CPU, memory and file counts per live process of every group (lost in multiprocess mode)."""
    cpu = Metric("todoscale_process_cpu_seconds", "CPU time of each process.", "counter")
    rss = Metric("todoscale_process_resident_memory_bytes", "Resident memory of each process.",
                 "gauge")  # fmt: skip
    files = Metric("todoscale_metrics_files", "Files in each group's metrics folder.", "gauge")
    for folder in folders:
        pids = {pid for path in folder.iterdir() if (pid := groups.pid_of(path))}
        held = groups.owner(folder)
        if held is not None:
            pids.add(held[0])
        for pid in sorted(pids):
            figures = proc_figures(pid)
            if figures is None:
                continue
            labels = {"service": folder.name, "pid": str(pid)}
            cpu.add_sample("todoscale_process_cpu_seconds_total", labels, figures[0])
            rss.add_sample("todoscale_process_resident_memory_bytes", labels, figures[1])
        count = sum(1 for _ in folder.iterdir())
        files.add_sample("todoscale_metrics_files", {"service": folder.name}, count)
    return [cpu, rss, files]


class JobFigures:
    """Jobs and reminders counted from the database, refreshed at most every few seconds.

    Finished jobs are read once each: the durations are kept in this process and only jobs
    finished since the last read are fetched (a retried job that finishes again counts again:
    each run is an outcome)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at = 0.0
        self._cached: list[Metric] = []
        self._after: datetime | None = None
        self._seen: set[str] = set()
        self._finished: dict[tuple[str, str], list[float]] = {}
        self._waits: dict[str, list[float]] = {}

    def collect(self) -> list[Metric]:
        """The job and reminder metrics, from the database (cached for a few seconds)."""
        with self._lock:
            if time.monotonic() - self._at > JOB_CACHE_SECONDS:
                self._cached = self._read()
                self._at = time.monotonic()
            return self._cached

    def _read(self) -> list[Metric]:
        for row in monitoring.finished_jobs(self._after):
            if row.id in self._seen and row.finished_at == self._after:
                continue
            if row.finished_at != self._after:
                self._seen.clear()
            self._after = row.finished_at
            self._seen.add(row.id)
            if row.started_at is not None:
                duration = (row.finished_at - row.started_at).total_seconds()
                self._observe(self._finished, (row.kind, row.status), duration)
                wait = (row.started_at - row.created_at).total_seconds()
                self._observe(self._waits, row.kind, wait)
        counts = Metric("todoscale_jobs", "Jobs by kind and status, from the job table.", "gauge")
        depth = Metric("todoscale_job_queue_depth", "Jobs waiting for a worker.", "gauge")
        queued = 0
        for kind, status, count in monitoring.job_counts():
            counts.add_sample("todoscale_jobs", {"kind": kind, "status": status}, count)
            queued += count if status == "queued" else 0
        depth.add_sample("todoscale_job_queue_depth", {}, queued)
        sent, emailed = monitoring.reminder_counts()
        reminders = Metric("todoscale_reminders_sent", "Due-date reminders sent.", "counter")
        reminders.add_sample("todoscale_reminders_sent_total", {"channel": "app"}, sent)
        reminders.add_sample("todoscale_reminders_sent_total", {"channel": "email"}, emailed)
        return [
            counts,
            depth,
            reminders,
            _histogram(
                "todoscale_job_duration_seconds",
                "Run time of finished jobs by kind and outcome.",
                {(k, o): v for (k, o), v in self._finished.items()},
                ("kind", "outcome"),
            ),
            _histogram(
                "todoscale_job_queue_wait_seconds",
                "Time jobs waited in the queue before a worker started them.",
                {(k,): v for k, v in self._waits.items()},
                ("kind",),
            ),
        ]

    @staticmethod
    def _observe(into: dict[Any, list[float]], key: Any, seconds: float) -> None:
        # Buckets then the sum: the same layout as a prometheus_client histogram.
        counts = into.setdefault(key, [0.0] * (len(JOB_BUCKETS) + 1))
        for index, bound in enumerate(JOB_BUCKETS):
            if seconds <= bound:
                counts[index] += 1
        counts[-1] += seconds


JOB_BUCKETS = (*LATENCY_BUCKETS, 30.0, 60.0, 300.0, float("inf"))


def _histogram(
    name: str, doc: str, data: dict[tuple[str, ...], list[float]], labels: tuple[str, ...]
) -> Metric:
    metric = Metric(name, doc, "histogram")
    for values, counts in data.items():
        base = dict(zip(labels, values, strict=True))
        for bound, count in zip(JOB_BUCKETS, counts, strict=False):
            le = "+Inf" if bound == float("inf") else repr(bound)
            metric.add_sample(f"{name}_bucket", {**base, "le": le}, count)
        metric.add_sample(f"{name}_count", base, counts[len(JOB_BUCKETS) - 1])
        metric.add_sample(f"{name}_sum", base, counts[-1])
    return metric


class _Page:
    """What `generate_latest` reads: a fixed list of metric families."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        """The families, same-named ones joined."""
        return self.metrics


def _join(metrics: Iterable[Metric]) -> list[Metric]:
    families: dict[str, Metric] = {}
    for metric in metrics:
        family = families.get(metric.name)
        if family is None:
            families[metric.name] = metric
        else:
            family.samples.extend(metric.samples)
    return list(families.values())


def render(root: Path, jobs: JobFigures | None) -> bytes:
    """The whole page: every group under `root`, this process, /proc and the database.

    The groups' files are merged by `merge` (parsed once, then read in one call a file);
    the few families known only here (this process, /proc, the database) by
    prometheus_client, each family once on the page."""
    started = time.perf_counter()
    page: dict[str, tuple[str, list[str]]] = {}
    with groups.locked(root):
        live = []
        for folder in groups.groups(root):
            held = groups.owner(folder)
            if held is None or not groups.alive(*held):
                continue  # removed by the sweep below
            groups.compact(folder)
            live.append(folder)
            for name, (header, lines) in merge.group(folder).render().items():
                page.setdefault(name, (header, []))[1].extend(lines)
        merge.forget(live)
        folders = groups.groups(root)
    collected: list[Metric] = []
    if groups.current_group() is None:
        collected += _labelled(REGISTRY.collect(), "local")
    collected += process_metrics(folders)
    if jobs is not None:
        collected += jobs.collect()
    took = Metric("todoscale_metrics_scrape_seconds", "Time to build this page.", "gauge")
    took.add_sample("todoscale_metrics_scrape_seconds", {}, time.perf_counter() - started)
    rest = []
    for metric in _join([*collected, took]):
        if metric.name in page:  # a family the files have too: its samples join theirs
            page[metric.name][1].extend(_sample_line(sample) for sample in metric.samples)
        else:
            rest.append(metric)
    text = "".join(header + "".join(lines) for header, lines in page.values())
    return text.encode() + generate_latest(_Page(rest))


def _sample_line(sample: Sample) -> str:
    return f"{merge.line(sample.name, sample.labels.items())}{floatToGoString(sample.value)}\n"


@bp.get("/metrics")
def metrics() -> Response:
    """The Prometheus page, to whoever may read it; 404 to everyone else."""
    if not may_read():
        abort(404)
    root = of(current_app).root
    groups.sweep(root)
    jobs = current_app.extensions.get(JOBS_EXTENSION)
    if jobs is None:
        jobs = current_app.extensions.setdefault(JOBS_EXTENSION, JobFigures())
    return Response(render(root, jobs), mimetype=CONTENT_TYPE.split(";")[0],
                    content_type=CONTENT_TYPE)  # fmt: skip
