"""The request layer's own files: what prometheus_client reads in them, written in place."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from pathlib import Path

from prometheus_client import REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector

from todoscale.ops import groups, merge, valuefile, values

SECONDS = (0.0004, 0.001, 0.003, 0.02, 0.7, 12.0)


def _files(folder: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample prometheus_client's own merge reads in the folder (pid labels dropped)."""
    found = {}
    for metric in MultiProcessCollector.merge([str(p) for p in folder.glob("*.db")], True):
        for sample in metric.samples:
            labels = frozenset((k, v) for k, v in sample.labels.items() if k != "pid")
            found[(sample.name, labels)] = sample.value
    return found


def _record(sink: values.FileValues | values.RegistryValues, endpoint: str) -> None:
    for n, seconds in enumerate(SECONDS):
        sink.started()
        sink.finished(endpoint, "GET", 200 if n % 2 else 404, seconds, n, n / 1000)


def test_the_files_say_what_prometheus_clients_own_metrics_say(tmp_path):
    endpoint = f"/test/values/{uuid.uuid4().hex}"  # series of their own in the registry
    _record(values.RegistryValues(), endpoint)
    sink = values.FileValues(tmp_path, os.getpid())
    _record(sink, endpoint)

    found = _files(tmp_path)

    assert found  # every sample the files hold is the registry's, value for value
    for (name, labels), value in found.items():
        assert REGISTRY.get_sample_value(name, dict(labels)) == value, (name, labels)
    count = "todoscale_http_request_duration_seconds_count"
    assert found[(count, frozenset({("endpoint", endpoint), ("method", "GET"),
                                    ("status", "404")}))] == 3  # fmt: skip
    assert found[("todoscale_http_requests_in_flight", frozenset())] == 0
    assert found[("todoscale_db_statements_total", frozenset({("endpoint", endpoint)}))] == 15


def test_values_are_in_the_file_as_soon_as_they_are_counted(tmp_path):
    sink = values.FileValues(tmp_path, os.getpid())
    sink.started()
    sink.started()
    assert _files(tmp_path)[("todoscale_http_requests_in_flight", frozenset())] == 2

    sink.finished("/a", "GET", 200, 0.002, 0, 0.0)

    found = _files(tmp_path)
    assert found[("todoscale_http_requests_in_flight", frozenset())] == 1
    labels = frozenset({("endpoint", "/a"), ("method", "GET"), ("status", "200")})
    assert found[("todoscale_http_request_duration_seconds_count", labels)] == 1
    assert found[("todoscale_http_request_duration_seconds_sum", labels)] == 0.002


def test_a_sigkilled_worker_loses_nothing_and_its_files_fold_into_the_archives(tmp_path):
    folder = groups.start_group(tmp_path, "web-values", {})
    pid = os.fork()
    if pid == 0:  # a worker that counts 3 requests and is killed at once, no exit hook
        sink = values.FileValues(folder, os.getpid())
        for _ in range(3):
            sink.started()
            sink.finished("/a", "GET", 200, 0.002, 2, 0.001)
        sink.started()  # in flight when it dies
        os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    labels = frozenset({("endpoint", "/a"), ("method", "GET"), ("status", "200")})
    before = _files(folder)

    with groups.locked(tmp_path):
        assert groups.compact(folder) == 1

    assert not [path for path in folder.iterdir() if groups.pid_of(path) == pid]
    after = _files(folder)
    assert before[("todoscale_http_request_duration_seconds_count", labels)] == 3
    assert after[("todoscale_http_request_duration_seconds_count", labels)] == 3
    assert after[("todoscale_db_statements_total", frozenset({("endpoint", "/a")}))] == 6
    assert ("todoscale_http_requests_in_flight", frozenset()) not in after  # gone with it
    page = merge.group(folder).render()
    assert page["todoscale_http_request_duration_seconds"][1]


def test_a_file_grows_and_every_value_stays_where_it_was(tmp_path):
    sink = values.FileValues(tmp_path, os.getpid())
    rules = [f"/grow/{n}/{'x' * 40}" for n in range(300)]  # 300 x 15 entries: over 64 KiB
    for rule in rules:
        sink.started()
        sink.finished(rule, "GET", 200, 0.003, 0, 0.0)
    sink.started()
    sink.finished(rules[0], "GET", 200, 0.003, 0, 0.0)

    size = (tmp_path / f"histogram_request_{os.getpid()}.db").stat().st_size
    assert size > valuefile.INITIAL_SIZE
    found = _files(tmp_path)
    count = "todoscale_http_request_duration_seconds_count"
    for n, rule in enumerate(rules):
        labels = frozenset({("endpoint", rule), ("method", "GET"), ("status", "200")})
        assert found[(count, labels)] == (2 if n == 0 else 1)


def test_a_file_reopened_keeps_its_entries(tmp_path):
    sink = values.FileValues(tmp_path, 4242)
    sink.finished("/a", "GET", 200, 0.003, 1, 0.001)
    sink.close()

    again = values.FileValues(tmp_path, 4242)
    again.finished("/a", "GET", 200, 0.003, 1, 0.001)

    labels = frozenset({("endpoint", "/a"), ("method", "GET"), ("status", "200")})
    found = _files(tmp_path)
    assert found[("todoscale_http_request_duration_seconds_count", labels)] == 2
    assert found[("todoscale_http_requests_in_flight", frozenset())] == -2  # no started()


def test_threads_counting_at_once_lose_no_count(tmp_path):
    sink = values.FileValues(tmp_path, os.getpid())

    def serve() -> None:
        for _ in range(2000):
            sink.started()
            with sink.lock:  # as the request layer holds it
                sink.finished("/a", "GET", 200, 0.001, 1, 0.0)

    threads = [threading.Thread(target=serve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    labels = frozenset({("endpoint", "/a"), ("method", "GET"), ("status", "200")})
    found = _files(tmp_path)
    assert found[("todoscale_http_request_duration_seconds_count", labels)] == 16_000
    assert found[("todoscale_db_statements_total", frozenset({("endpoint", "/a")}))] == 16_000
    assert found[("todoscale_http_requests_in_flight", frozenset())] == 0


def test_a_forked_child_forgets_its_parents_files(make_app, tmp_path):
    from todoscale.ops import metrics

    layer = metrics.of(make_app())
    layer.ledger = metrics.Ledger(values.FileValues(tmp_path, os.getpid()), layer.recorder)

    pid = os.fork()
    if pid == 0:  # its first request opens files of its own pid
        os._exit(0 if layer.ledger is None else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert layer.ledger is not None
