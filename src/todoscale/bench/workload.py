"""The reference workload in scratch instance folders: one user, 10,000 todos in the Inbox.

Seeded once into a template folder by the `todoscale` command itself (migrate, then `seed`),
then copied for each server that needs a database of its own, so no server's writes (beat's
housekeeping, the cache's stamps) reach another's. Never the user's instance: every command
runs with an environment stripped of the caller's TODOSCALE_* settings.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import Select

from todoscale.bench import procs
from todoscale.services import todos

TODOS = 10_000
PASSWORD = "password123"
USERNAME = "user1"
PAGE_SIZE = 10
READ_PATH = f"/api/v1/todos?limit={PAGE_SIZE}"
# The index the ladder's first rung goes without (models/todos.py): list, then newest first.
INDEX = "ix_todos_list_created"
INDEX_SQL = f"CREATE INDEX {INDEX} ON todos (list_id, created_at, id)"


def environment(instance: Path, database_url: str | None = None) -> dict[str, str]:
    """The settings of a bench server on `instance` (SQLite there unless `database_url`)."""
    env = {"TODOSCALE_INSTANCE_PATH": str(instance), "TODOSCALE_ENV": "development"}
    if database_url:
        env["TODOSCALE_DATABASE_URL"] = database_url
    return env


def seed(instance: Path, database_url: str | None = None) -> str:
    """Migrate and seed the reference workload into `instance`; return what `seed` said."""
    instance.mkdir(parents=True, exist_ok=True)
    todoscale = str(procs.BIN / "todoscale")
    env = environment(instance, database_url)
    procs.run([todoscale, "db", "upgrade"], env, clean=True)
    said = procs.run(
        [todoscale, "seed", "--users", "1", "--todos", str(TODOS), "--password", PASSWORD],
        env,
        clean=True,
    )
    return said.strip()


def copy(template: Path, instance: Path) -> Path:
    """A copy of the template's instance folder (SQLite database, secret key) at `instance`."""
    shutil.copytree(template, instance, ignore=shutil.ignore_patterns("run", "cluster", "*.log"))
    return instance


def drop_index(instance: Path) -> None:
    """Drop the (list, created_at) index from the SQLite copy at `instance`: rung 1."""
    with sqlite3.connect(instance / "todoscale.db") as conn:
        conn.execute(f"DROP INDEX {INDEX}")


def _page_statement(list_id: str, after: tuple[Any, str] | None = None) -> Select[Any]:
    # The statement the service runs for the reference read (services/todos.py), first page
    # or after a cursor.
    params: dict[str, Any] = {"list0": list_id, "limit": PAGE_SIZE + 1}
    if after is not None:
        params.update(after_created=after[0], after_id=after[1])
    return todos._page_query(1, False, after is not None).params(**params)


def sqlite_plan(instance: Path, page: int = 1) -> dict[str, Any]:
    """`EXPLAIN QUERY PLAN` of page `page` of the reference read (keyset after page 1) on the
    SQLite database at `instance`."""
    with sqlite3.connect(instance / "todoscale.db") as conn:
        (list_id,) = conn.execute("SELECT id FROM lists LIMIT 1").fetchone()
        after = None
        if page > 1:  # the cursor of page `page`: the last item of the page before it
            after = conn.execute(
                "SELECT created_at, id FROM todos WHERE list_id = ? "
                "ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?",
                (list_id, (page - 1) * PAGE_SIZE - 1),
            ).fetchone()
        compiled = _page_statement(list_id, after).compile(dialect=sqlite.dialect())
        params = [compiled.params[name] for name in compiled.positiontup or []]
        rows = conn.execute(f"EXPLAIN QUERY PLAN {compiled.string}", params).fetchall()
    return {"sql": compiled.string, "plan": [row[-1] for row in rows]}


def analyze(database_url: str) -> None:
    """`ANALYZE` the freshly seeded tables, as autovacuum soon would: without statistics the
    planner guesses (10 rows for the whole Inbox) and the plan shown would be no real one."""
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def postgres_plan(database_url: str) -> dict[str, Any]:
    """`EXPLAIN` of the reference read on the PostgreSQL database of `database_url`."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            list_id = conn.execute(text("SELECT id FROM lists LIMIT 1")).scalar_one()
            compiled = _page_statement(list_id).compile(dialect=conn.dialect)
            rows = conn.exec_driver_sql(f"EXPLAIN {compiled.string}", compiled.params).fetchall()
    finally:
        engine.dispose()
    return {"sql": compiled.string, "plan": [row[0] for row in rows]}


def token(base: str, username: str = USERNAME) -> str:
    """Log in with HTTP Basic at the server `base` and return a bearer token."""
    creds = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        f"{base}/api/v1/tokens", method="POST", headers={"Authorization": f"Basic {creds}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        value: str = json.load(response)["token"]
        return value


def page_path(base: str, headers: dict[str, str], page: int) -> str:
    """The path of page `page` of the reference read, reached by following `next_cursor`
    through every page before it, as a client would."""
    path = READ_PATH
    for _ in range(page - 1):
        request = urllib.request.Request(base + path, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            cursor = json.load(response)["next_cursor"]
        if cursor is None:
            raise RuntimeError(f"the reference workload has fewer than {page} pages")
        path = f"{READ_PATH}&cursor={cursor}"
    return path


WRITER = "writer"
WRITER_PASSWORD = "ladder writer 7319"


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={**headers, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


def writer(base: str, todos: int) -> tuple[dict[str, str], list[str]]:
    """Sign a second user up at `base` (the writes go to their Inbox, never to the reader's)
    and give them `todos` todos to complete; return their bearer header and the todos' ids."""
    _post(
        f"{base}/api/v1/users",
        {"username": WRITER, "email": "writer@bench.invalid", "password": WRITER_PASSWORD},
        {},
    )
    creds = base64.b64encode(f"{WRITER}:{WRITER_PASSWORD}".encode()).decode()
    token = _post(f"{base}/api/v1/tokens", {}, {"Authorization": f"Basic {creds}"})["token"]
    auth = {"Authorization": f"Bearer {token}"}
    body = {"title": "completed and reopened by the bench"}
    with ThreadPoolExecutor(8) as pool:
        made = pool.map(lambda _: _post(f"{base}/api/v1/todos", body, auth), range(todos))
        return auth, [str(todo["id"]) for todo in made]
