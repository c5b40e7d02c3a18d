"""granian's command line with the app's modules imported first: `python -m todoscale.prefork`.

granian forks its workers from its main process, and each then imports the app by itself:
three copies of the same modules (Flask, SQLAlchemy, Celery, ... and ours). Imported here,
before granian starts, they are in the main process's pages, which the forked workers share
until one writes to them; `gc.freeze()` keeps the collector from writing to every object's
header in the first collection. Measured (2 workers, `todoscale.wsgi:app`, after 200
requests): 201 -> 139 MiB of PSS for the three processes.

Modules only: the app itself (engine, pools, threads, files) is made in each worker after
the fork, as without this; nothing the workers must not share exists yet.
"""

from __future__ import annotations

import gc
import sys


def main() -> None:
    """Import the app's modules, freeze them out of the collector, run granian's CLI."""
    import todoscale.app  # noqa: F401  (its modules; `create_app` is called in each worker)

    gc.collect()
    gc.freeze()
    from granian.cli import entrypoint

    sys.argv[0] = "granian"
    entrypoint()


if __name__ == "__main__":
    main()
