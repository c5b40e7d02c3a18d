"""What an import costs `make run`: the peak memory of its web and worker processes for
hostile files, and how long a valid 1 MiB CSV holds the web process.

`python -m bench.imports` starts `todoscale run` (one gunicorn gevent worker for the web, a
Celery worker with beat) on a fresh instance folder, then uploads each file through the API
and waits for its job. Before each file the kernel's peak-RSS counter of every process is
reset (`/proc/PID/clear_refs`, 5; needs Linux 4.0 and the processes' owner), so each row's
peak is that file's own; the row reports the largest `VmHWM` of the web processes (gunicorn)
and of the worker's (Celery and its pool). Request times are wall-clock from this process,
medians of `--runs`.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import ROOT
from bench.embedded import PASSWORD, free_port, token
from todoscale.bench import procs
from todoscale.bench.procs import processes

MIB = 1024 * 1024
# Under the 10 MiB request limit with the multipart envelope around the file.
TEN_MIB = 10 * MIB - 4096
JOB_SECONDS = 600


def files() -> dict[str, bytes]:
    """The files measured, by name: the audit's two hostile ones and a valid 1 MiB CSV."""
    zeros = (TEN_MIB - 2) // 2
    wrapped = (TEN_MIB - len(b'{"todos":[]}')) // 2
    return {
        "10 MiB JSON array of zeros": b"[" + b"0," * zeros + b"0]",
        '10 MiB {"todos": [0, 0, ...]}': b'{"todos":[' + b"0," * wrapped + b"0]}",
        "1 MiB CSV of one-letter titles": b"title\n" + b"a\n" * ((MIB - 6) // 2),
    }


def _multipart(list_id: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="list_id"\r\n\r\n{list_id}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="import"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


def _call(port: int, method: str, path: str, auth: str, **kwargs: Any) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=JOB_SECONDS)
    conn.request(
        method, path, headers={"Authorization": auth, **kwargs.pop("headers", {})}, **kwargs
    )
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, json.loads(body) if body else None


def _descendants(root: int) -> list[int]:
    parents = {pid: int(fields[1]) for pid, fields in processes()}
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _kind(pid: int) -> str | None:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if b"gunicorn" in command:
        return "web"
    if b"celery" in command:
        return "worker"
    return None


def _largest_mib(pids: list[int], field: str = "VmHWM") -> float:
    """The largest `field` of /proc/PID/status (VmHWM: peak RSS, VmRSS: RSS now) in MiB."""
    values = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        line = next(line for line in status.splitlines() if line.startswith(f"{field}:"))
        values.append(int(line.split()[1]) / 1024)
    return max(values, default=0.0)


def _reset_peaks(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):  # it ended meanwhile
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _wait_job(port: int, auth: str, job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_SECONDS
    while job["status"] not in {"succeeded", "failed"} and time.monotonic() < deadline:
        time.sleep(0.2)
        _, job = _call(port, "GET", f"/api/v1/jobs/{job['id']}", auth)
    return job


def measure(port: int, root: int, auth: str, list_id: str, name: str, data: bytes) -> dict:
    """Upload one file: the answer, the request's time, the job's outcome, the peaks."""
    groups = {"web": [], "worker": []}
    for pid in _descendants(root):
        kind = _kind(pid)
        if kind:
            groups[kind].append(pid)
    idle = {kind: _largest_mib(pids, "VmRSS") for kind, pids in groups.items()}
    _reset_peaks(groups["web"] + groups["worker"])
    body, boundary = _multipart(list_id, data)
    started = time.perf_counter()
    status, job = _call(
        port,
        "POST",
        "/api/v1/imports",
        auth,
        body=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    seconds = time.perf_counter() - started
    if status == 202:
        job = _wait_job(port, auth, job)
    outcome = job.get("status") if status == 202 else (job or {}).get("detail", "")[:80]
    job_s = None
    if status == 202 and job.get("finished_at"):
        finished, created = (_time(job[key]) for key in ("finished_at", "created_at"))
        job_s = (finished - created).total_seconds()
    return {
        "file": name,
        "status": status,
        "request_s": seconds,
        "job_s": job_s,
        "outcome": outcome,
        "error": (job.get("error") or "")[:80] if status == 202 else "",
        "web_rss_before_mib": idle["web"],
        "web_peak_mib": _largest_mib(groups["web"]),
        "worker_rss_before_mib": idle["worker"],
        "worker_peak_mib": _largest_mib(groups["worker"]),
    }


def run(*, runs: int, out: Path) -> list[dict[str, Any]]:
    """For each file a fresh `todoscale run` (so no peak is left over from another file's
    job); upload it (the CSV `runs` times) and wait for the job; print the table."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="todoscale-bench-imports-") as tmp:
        port = free_port()
        env = {
            "TODOSCALE_INSTANCE_PATH": tmp,
            "TODOSCALE_ENV": "development",
            "PORT": str(port),
            "TODOSCALE_IMPORT_LIMIT": "1000 per minute",
            "C_FORCE_ROOT": "1",
        }
        todoscale = str(procs.BIN / "todoscale")
        procs.run([todoscale, "db", "upgrade"], env)
        procs.run([todoscale, "seed", "--users", "1", "--todos", "0", "--password", PASSWORD], env)
        for number, (name, data) in enumerate(files().items()):
            log = out / f"imports-run-{number}.log"
            server = procs.Server("todoscale run", [todoscale, "run"], env, log)
            try:
                server.wait_ready(f"http://127.0.0.1:{port}/healthz")
                auth = f"Bearer {token(f'http://127.0.0.1:{port}', 'user1')}"
                _, lists = _call(port, "GET", "/api/v1/lists", auth)
                list_id = lists["items"][0]["id"]
                for _ in range(runs if name.startswith("1 MiB") else 1):
                    rows.append(measure(port, server.proc.pid, auth, list_id, name, data))
                    print(json.dumps(rows[-1]), flush=True)
            finally:
                server.stop()
    _print(rows)
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    print(
        "\n| file | answer | request s (median) | job | job s (median) | web RSS before, MiB"
        " | web peak MiB"
        " | worker RSS before, MiB | worker peak MiB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in dict.fromkeys(row["file"] for row in rows):
        mine = [row for row in rows if row["file"] == name]
        first = mine[0]
        print(
            f"| {name} | {first['status']} | {statistics.median(r['request_s'] for r in mine):.3f}"
            f" | {first['outcome']} {first['error']} | {_median(r['job_s'] for r in mine)}"
            f" | {first['web_rss_before_mib']:.0f}"
            f" | {max(r['web_peak_mib'] for r in mine):.0f} | {first['worker_rss_before_mib']:.0f}"
            f" | {max(r['worker_peak_mib'] for r in mine):.0f} |"
        )


def _median(values: Any) -> str:
    known = [value for value in values if value is not None]
    return f"{statistics.median(known):.1f}" if known else "-"


def main() -> None:
    """`python -m bench.imports [--runs N]`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="uploads of the 1 MiB CSV")
    args = parser.parse_args()
    out = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S-imports")
    out.mkdir(parents=True, exist_ok=True)
    rows = run(runs=args.runs, out=out)
    (out / "figures.json").write_text(json.dumps(rows, indent=2))
    print(f"\nFigures and logs: {out}")


if __name__ == "__main__":
    main()
