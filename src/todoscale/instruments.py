"""Every Prometheus metric the app records, defined once. A leaf: imports nothing of ours.

In a process whose launcher exported `PROMETHEUS_MULTIPROC_DIR` (see `ops.groups`) each value
lives in a memory-mapped file of that folder, and `/metrics` merges the files of every
process; elsewhere (tests, `flask run`) the values live in this process.

Labels are bounded: routes by URL rule (never the raw path), methods from a fixed set,
job kinds and cache tiers from the code. Jobs and reminders are not here: `/metrics` reads
them from the database (`ops.exposition`), so they are right whichever process ran them.
"""

from prometheus_client import Counter, Gauge, Histogram

# Seconds; the goals are stated in milliseconds (p99 under 100 ms at 1000 connections).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_LABELS = ("endpoint", "method", "status")
REQUEST_SECONDS = Histogram(
    "todoscale_http_request_duration_seconds",
    "HTTP requests by route rule, method and status, and how long they took.",
    REQUEST_LABELS,
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "todoscale_http_requests_in_flight",
    "HTTP requests being served now.",
    multiprocess_mode="livesum",
)
SQL_STATEMENTS = Counter(
    "todoscale_db_statements",
    "SQL statements run while serving requests, by route rule.",
    ["endpoint"],
)
SQL_SECONDS = Counter(
    "todoscale_db_statement_seconds",
    "Time spent in SQL statements while serving requests, by route rule.",
    ["endpoint"],
)
CACHE_REQUESTS = Counter(
    "todoscale_cache_requests",
    "Cache look-ups by tier (local, shared) and result (hit, miss).",
    ["tier", "result"],
)
RATE_LIMITED = Counter(
    "todoscale_rate_limited",
    "Requests refused with 429 by kind (limit: a rate limit, login: login throttling).",
    ["kind"],
)
SOCKETIO_CONNECTIONS = Gauge(
    "todoscale_socketio_connections",
    "Socket.IO clients connected now.",
    multiprocess_mode="livesum",
)
SOCKETIO_EMITTED = Counter(
    "todoscale_socketio_events_emitted",
    "Live-update events sent by this app (to a Socket.IO server, queue or relay), by event.",
    ["event"],
)
SOCKETIO_DELIVERED = Counter(
    "todoscale_socketio_events_delivered",
    "Live-update events handed to connected clients by a serving process, one per client.",
    ["event"],
)
PROFILES = Counter(
    "todoscale_profiles_recorded",
    "Requests profiled on demand (an admin's order or header).",
)
