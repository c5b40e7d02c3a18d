"""granian's command line with the app's modules imported first: `python -m todoscale.prefork`.

granian forks its workers from its main process, and each then imports the app by itself:
three copies of the same modules (Flask, SQLAlchemy, Celery, ... and ours). Imported here,
before granian starts, they are in the main process's pages, which the forked workers share
until one writes to them; `gc.freeze()` keeps the collector from writing to every object's
header in the first collection. Measured (2 workers, `todoscale.wsgi:app`, after 200
requests): 201 -> 139 MiB of PSS for the three processes.

It also owns the server's metrics group (before anything imports prometheus_client), as
gunicorn's master does in deploy/gunicorn.conf.py: `todoscale serve` and `todoscale run`
start granian through here alike.

Modules only: the app itself (engine, pools, threads, files) is made in each worker after
the fork, as without this; nothing the workers must not share exists yet.
"""

from __future__ import annotations

import gc
import os
import sys


def main() -> None:
    """Own the metrics group, import the app's modules, freeze them out of the collector,
    run granian's CLI."""
    _own_metrics_group()
    import_app_modules()
    from granian.cli import entrypoint

    sys.argv[0] = "granian"
    entrypoint()


def import_app_modules() -> None:
    """Import the app's modules (not the app) and move every object so far out of the
    collector's reach, in a server's main process, before it forks its workers (granian's
    here, gunicorn's master in deploy/gunicorn.conf.py), python-socketio without its
    clients' libraries (todoscale.lean) where the app uses it (realtime.uses_socketio)."""
    from todoscale.config import load_config
    from todoscale.lean import import_socketio_without_clients
    from todoscale.realtime import uses_socketio

    if uses_socketio(load_config()):  # the relay's emitters never import it (realtime)
        import_socketio_without_clients()
    import todoscale.app  # noqa: F401  (its modules; `create_app` is called in each worker)

    gc.collect()
    gc.freeze()


def _own_metrics_group() -> None:
    """Be the owner of this server's metrics group, as gunicorn's master is of its own
    (ops.groups): its workers inherit the folder and count into it, and `/metrics` of any
    of them sums them all. Before prometheus_client is imported: it picks multiprocess mode
    then. A launcher that set a group up already (a test, say) keeps it."""
    from todoscale.config import ConfigurationError, load_config, metrics_root
    from todoscale.deploy.servers import bind_spec
    from todoscale.ops import groups

    if groups.current_group() is not None:
        return
    try:
        root = metrics_root(load_config())
    except ConfigurationError as exc:
        sys.exit(f"todoscale: {exc}")  # which setting to fix, not a traceback
    groups.start_group(root, groups.group_name("web", bind_spec(os.environ)), os.environ)


if __name__ == "__main__":
    main()
