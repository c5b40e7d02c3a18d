"""The bench's load tools' own logic: the Python generator (wrk missing) against a real local
server, wrk's report as read, and `--rungs` as chosen."""

from __future__ import annotations

import itertools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import skip_or_fail
from todoscale.bench import load
from todoscale.bench.rungs import choose

# The PATCHes a server got: (path, body), in the order they arrived.
_writes: list[tuple[str, str]] = []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the generator expects

    def do_GET(self) -> None:
        status = 404 if self.path.startswith("/missing") else 200
        body = b'{"msg": "hello world"}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PATCH(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        _writes.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_the_python_generator_counts_answers_and_failures(server):
    ok = load.run(server + "/index", connections=4, seconds=1, headers={}, python=True)
    assert ok.tool == load.PYTHON_TOOL
    assert ok.requests > 10 and ok.non_2xx == 0 and ok.socket_errors == 0
    assert 0 < ok.p50_ms <= ok.p99_ms and ok.probe_ms is not None
    missing = load.python_run(server + "/missing", connections=2, seconds=1, headers={})
    assert missing.requests > 0 and missing.non_2xx == missing.requests


def test_the_python_generator_counts_a_refused_connection_as_a_socket_error():
    refused = load.python_run("http://127.0.0.1:1/", connections=1, seconds=1, headers={})
    assert refused.requests == 0 and refused.socket_errors > 0 and refused.probe_ms is None


WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:18001/api/v1/todos?limit=10
  2 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   142.10ms   30.12ms 400.00ms   70.00%
  Latency Distribution
     50%  130.50ms
     75%  150.00ms
     90%  180.00ms
     99%    1.20s
  2100 requests in 3.01s, 5.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 7
  Non-2xx or 3xx responses: 12
Requests/sec:    697.67
Transfer/sec:      1.66MB
"""


def test_wrk_report_is_read_with_its_failures():
    result = load.parse(WRK_OUTPUT)
    assert result.requests_per_second == 697.67 and result.requests == 2100
    assert (result.p50_ms, result.p99_ms, result.mean_ms) == (130.5, 1200.0, 142.1)
    assert (result.socket_errors, result.non_2xx) == (10, 12)


def test_rungs_are_chosen_by_number_key_or_floors():
    assert [c.key for c in choose(None, quick=True)] == [
        "1", "2", "4-granian", "8-embedded", "hello", "naive",
    ]  # fmt: skip
    assert [c.key for c in choose("4", quick=False)] == ["4-gevent", "4-granian", "hello", "naive"]
    assert [c.key for c in choose("3", quick=True)] == ["3", "hello", "naive"]
    assert "naive-500" in [c.key for c in choose("5-page500,floors", quick=True)]
    with pytest.raises(ValueError, match="unknown rung 9"):
        choose("9", quick=False)


def test_search_comes_with_the_reference_read_it_is_read_against():
    chosen = [c.key for c in choose("search", quick=True)]
    assert chosen == ["7-local", "hello", "naive", "search-rare", "search-common"]


def test_observe_comes_with_the_reference_read_as_shipped():
    chosen = [c.key for c in choose("observe", quick=True)]
    assert chosen == [
        "5-page1", "7-local", "hello", "naive", "observe-off", "observe-off-uncached",
        "observe-profiled",
    ]  # fmt: skip


@pytest.mark.parametrize("tool", ["wrk", "python"])
def test_a_write_spread_over_paths_gives_each_its_own_turns(server, tool):
    # Completing one todo from every connection at once answers most of them 412 (someone
    # else changed it at the same moment): the complete case spreads its PATCHes over many
    # todos, each of which is then completed and reopened in turn.
    if tool == "wrk" and shutil.which("wrk") is None:
        skip_or_fail("wrk is not installed (apt-get install wrk): the ladder's load tool")
    paths = tuple(f"/todos/{n}" for n in range(4))
    write = load.Write("PATCH", ('{"completed": true}', '{"completed": false}'), paths)
    _writes.clear()

    load.run(
        server + "/ignored", connections=2, seconds=1, headers={}, python=tool == "python",
        write=write,
    )  # fmt: skip

    seen = list(_writes)
    assert {path for path, _ in seen} == set(paths), seen[:8]
    for path in paths:
        bodies = [json.loads(body)["completed"] for where, body in seen if where == path]
        assert len(bodies) > 2 and all(a != b for a, b in itertools.pairwise(bodies)), bodies
