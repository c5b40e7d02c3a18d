"""The articles' ladder, rung by rung, as cases: which server, which request, the article's
own figure. The floors (outside the service) stand beside them."""

from __future__ import annotations

from dataclasses import dataclass

from todoscale.bench.setups import CORES, SYNC_WORKERS

# The articles' figures (req/s, one todo page over 10,000 rows under wrk), by rung.
ARTICLES = {1: 43.0, 2: 298.0, 3: 863.0, 4: 1128.0, 6: 892.0, 7: 2992.0}
ARTICLE_FIRST = ARTICLES[1]
MEINHELD = (
    "The articles' asynchronous worker, meinheld, is unmaintained and no longer builds on "
    "current Python (only on 3.11, with --no-deps --no-build-isolation): rung 4 measures "
    "gunicorn's gevent worker and granian instead."
)
OFFSET_NOTE = (
    "The service pages by keyset only; at page 1 the articles' OFFSET 0 and the keyset's "
    "first page are the same statement (the plan shows `LIMIT ? OFFSET ?` with 0), so rungs "
    "1-4 read page 1. What OFFSET costs deeper down is measured on the naive port at page 500 "
    "(`?start=4990`), beside the service's keyset page 500."
)


# Not a rung: the write path (create, complete), beside the naive port's POST.
WRITES = 9
# Not a rung: search (`GET /api/v1/todos?q=`), beside the reference read of the same set-up.
SEARCH = 10
# Not a rung: the reference read with the always-on layer off, and with a profile armed on
# another endpoint, beside it as shipped (7-local); and with the layer off and the cache off,
# beside 5-page1 (every request through Flask and SQLite).
OBSERVE = 11


@dataclass(frozen=True)
class Case:
    """One measured row: a rung (0 for the floors), a server set-up, a request."""

    key: str
    rung: int
    label: str
    setup: str
    request: str  # "read", "page500", "hello", "naive", "naive500", "create", "complete", ...
    quick: bool = False

    @property
    def article(self) -> float | None:
        """The article's req/s for this rung (None where the articles had no such step)."""
        return ARTICLES.get(self.rung) if self.request == "read" else None


CASES = [
    Case("1", 1, "flask run, no index, OFFSET paging, cache off", "dev-noindex", "read", True),
    Case("2", 2, "+ index on (list, created_at)", "dev-index", "read", True),
    Case("3", 3, f"+ gunicorn sync x{SYNC_WORKERS} (2 x cores + 1)", "gunicorn-sync", "read"),
    Case(
        "4-gevent", 4, f"+ async worker: gunicorn gevent x{SYNC_WORKERS}", "gunicorn-gevent", "read"
    ),
    Case(
        "4-granian",
        4,
        f"+ async worker: granian {CORES} workers x 4 threads",
        "granian",
        "read",
        True,
    ),
    Case("5-page1", 5, "+ keyset paging, page 1 (granian)", "granian", "read"),
    Case("5-page500", 5, "keyset paging, page 500 (granian)", "granian", "page500"),
    Case("6", 6, f"+ nginx in front of {CORES} granian instances", "nginx", "read"),
    Case("7-local", 7, "+ cache, local tier (SQLite, granian)", "cached", "read"),
    Case("7-shared", 7, "+ cache on PostgreSQL, Redis tier (granian)", "shared", "read"),
    Case("8-embedded", 8, "todoscale as shipped: `todoscale run` (make run)", "run", "read", True),
    Case(
        "8-cluster",
        8,
        f"todoscale scaled out: `cluster up`, {CORES} instances, PostgreSQL + Redis",
        "cluster",
        "read",
    ),
    Case("hello", 0, "floor: bare Flask hello JSON (granian)", "hello", "hello", True),
    Case("naive", 0, "floor: naive todo port, page 1 (granian)", "naive", "naive", True),
    Case("naive-500", 0, "floor: naive todo port, OFFSET page 500 (granian)", "naive", "naive500"),
    Case(
        "search-rare",
        SEARCH,
        "search, one rare word (`q=7777`; x = its read, 7-local)",
        "cached",
        "search-rare",
    ),
    Case(
        "search-common",
        SEARCH,
        "search, a word of every title (`q=number`; x = 7-local)",
        "cached",
        "search-common",
    ),
    Case(
        "observe-off",
        OBSERVE,
        "reference read, TODOSCALE_OBSERVE=0 (x = 7-local, the layer on)",
        "cached-unobserved",
        "read",
    ),
    Case(
        "observe-off-uncached",
        OBSERVE,
        "reference read, cache off, TODOSCALE_OBSERVE=0 (x = 5-page1, the layer on)",
        "granian-unobserved",
        "read",
    ),
    Case(
        "observe-profiled",
        OBSERVE,
        "reference read, a profile armed on another endpoint (x = 7-local)",
        "cached-profiled",
        "read",
    ),
    Case(
        "write-create",
        WRITES,
        "write: POST /api/v1/todos (SQLite, granian)",
        "write-sqlite",
        "create",
    ),
    Case(
        "write-complete",
        WRITES,
        "write: PATCH completing a todo (SQLite, granian)",
        "write-sqlite",
        "complete",
    ),
    Case(
        "write-create-pg",
        WRITES,
        "write: POST /api/v1/todos (PostgreSQL + Redis, granian)",
        "write-postgres",
        "create",
    ),
    Case(
        "write-complete-pg",
        WRITES,
        "write: PATCH completing a todo (PostgreSQL + Redis)",
        "write-postgres",
        "complete",
    ),
    Case(
        "naive-create",
        WRITES,
        "write floor: naive todo port, POST /todo (granian)",
        "naive-write",
        "naive-create",
    ),
]
BY_KEY = {case.key: case for case in CASES}


def choose(spec: str | None, *, quick: bool) -> list[Case]:
    """The cases `--rungs` names, in ladder order: rung numbers (under `--quick`, that rung's
    quick cases where it has some), case keys, `floors` (every floor), `writes`, `search` or
    `observe`.

    Without it: every case, or the quick subset. The quick floors (hello, naive page 1) come
    along with any choice: every figure is read against them.
    """
    pool = [case for case in CASES if case.quick or not quick]
    if not spec:
        return pool
    wanted = {part.strip() for part in spec.split(",") if part.strip()}
    named = {"floors", "writes", "search", "observe"}
    unknown = wanted - {str(n) for n in range(1, 9)} - set(BY_KEY) - named
    if unknown:
        raise ValueError(
            f"unknown rung {', '.join(sorted(unknown))}: use 1-8, floors, writes, search, observe, "
            f"or a case key ({', '.join(BY_KEY)})"
        )

    def of_rung(rung: int) -> list[Case]:
        quick_ones = [case for case in pool if case.rung == rung]
        return quick_ones or [case for case in CASES if case.rung == rung]

    chosen = {case.key for case in CASES if case.key in wanted or (case.rung == 0 and case.quick)}
    for part in wanted:
        if part.isdigit():
            chosen |= {case.key for case in of_rung(int(part))}
    if "floors" in wanted:
        chosen |= {case.key for case in CASES if case.rung == 0}
    if "writes" in wanted:
        chosen |= {case.key for case in CASES if case.rung == WRITES}
    if "search" in wanted:  # with the reference read of the same set-up, to be read against
        chosen |= {case.key for case in CASES if case.rung == SEARCH} | {"7-local"}
    if "observe" in wanted:  # with the read as shipped, to be read against
        chosen |= {case.key for case in CASES if case.rung == OBSERVE} | {"7-local", "5-page1"}
    return [case for case in CASES if case.key in chosen]
