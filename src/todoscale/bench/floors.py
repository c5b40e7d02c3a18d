"""The benchmark's floors: two apps outside the service, served like it, to measure it against.

- `hello`: a bare Flask app with one hello-JSON view (the articles' first program), the
  ceiling of any Flask view under a given server;
- `naive`: a naive port of the articles' todo app (Flask, raw sqlite3, an index on
  `created_at`, the newest 10 with `?start=` offsets, no auth, no logs, no limits): what
  "just write the view" reaches on the reference workload.

Neither imports anything of todoscale, so neither pays any of its per-request costs.
Serve them with the service's own server and settings, e.g.
`granian --interface wsgi todoscale.bench.floors:naive` with `NAIVE_DATABASE` naming the file that
`python -m todoscale.bench.floors seed FILE` filled.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import threading
import time
import uuid
from typing import Any

from flask import Flask, Response, abort, jsonify, request

hello = Flask("hello")


@hello.get("/index")
def hello_index() -> Response:
    """The articles' first view: a JSON hello."""
    return jsonify(msg="hello world")


naive = Flask("naive")

SCHEMA = """
CREATE TABLE IF NOT EXISTS todos (
    id TEXT PRIMARY KEY,
    content TEXT NOT NULL,
    created_at REAL NOT NULL,
    is_finished INTEGER NOT NULL DEFAULT 0,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS ix_todos_created_at ON todos (created_at DESC);
"""
_local = threading.local()


def _db() -> sqlite3.Connection:
    """This thread's connection to NAIVE_DATABASE (WAL, as the service's SQLite runs)."""
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(os.environ.get("NAIVE_DATABASE", "naive.db"), timeout=10)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        _local.conn = conn
    return conn


def _json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "content": row["content"],
        "created_at": row["created_at"],
        "is_finished": bool(row["is_finished"]),
        "finished_at": row["finished_at"],
    }


@naive.get("/todo")
def naive_index() -> Response:
    """Ten todos, newest first, from offset `start`."""
    start = request.args.get("start", "")
    offset = int(start) if start.isdigit() else 0
    rows = _db().execute(
        "SELECT * FROM todos ORDER BY created_at DESC LIMIT 10 OFFSET ?", (offset,)
    )
    return jsonify([_json(row) for row in rows])


@naive.post("/todo")
def naive_add() -> tuple[Response, int]:
    """Add a todo from the form field (or JSON key) `content`."""
    body = request.get_json(silent=True) or request.form
    content = body.get("content")
    if not content:
        abort(400)
    todo_id = uuid.uuid4().hex
    with _db() as conn:
        conn.execute(
            "INSERT INTO todos (id, content, created_at) VALUES (?, ?, ?)",
            (todo_id, content, time.time()),
        )
    return jsonify(id=todo_id), 201


@naive.put("/todo/<todo_id>/finish")
def naive_finish(todo_id: str) -> Response:
    """Mark a todo finished."""
    with _db() as conn:
        done = conn.execute(
            "UPDATE todos SET is_finished = 1, finished_at = ? WHERE id = ?",
            (time.time(), todo_id),
        )
    if done.rowcount == 0:
        abort(404)
    return Response(status=200)


@naive.delete("/todo/<todo_id>")
def naive_delete(todo_id: str) -> Response:
    """Delete a todo."""
    with _db() as conn:
        done = conn.execute("DELETE FROM todos WHERE id = ?", (todo_id,))
    if done.rowcount == 0:
        abort(404)
    return Response(status=200)


def seed(path: str, todos: int) -> None:
    """Fill the naive app's database at `path` with `todos` todos (the reference workload)."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    now = time.time()
    with conn:
        conn.executemany(
            "INSERT INTO todos (id, content, created_at, is_finished) VALUES (?, ?, ?, ?)",
            (
                (uuid.uuid4().hex, f"Todo number {n + 1}", now - (todos - n), int(n % 5 == 0))
                for n in range(todos)
            ),
        )
    conn.close()


def main() -> None:
    """`python -m todoscale.bench.floors seed FILE [--todos N]`."""
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed", help="fill a naive app database")
    seeding.add_argument("path")
    seeding.add_argument("--todos", type=int, default=10_000)
    args = parser.parse_args()
    seed(args.path, args.todos)


if __name__ == "__main__":
    main()
