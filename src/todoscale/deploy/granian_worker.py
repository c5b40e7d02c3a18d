"""What a granian worker needs before it loads the app: SIGTERM's default action back.

granian forks its workers from its main process, whose SIGINT and SIGTERM handlers they
inherit: bound methods of the main process's server object, which in the child's copy only
flag a main loop that does not run there. A TERM that reaches a worker while it still loads
the app (a reload's new worker, seconds after a SIGHUP, when the shutdown or supervisord's
stop of the group comes) is swallowed; the worker then installs its own handlers, serves on,
and the main process waits for it forever (measured: `tests/chaos/test_reload.py`). With
the default actions back, such a TERM ends the worker at once, before it served anything;
once loaded, granian's own handlers replace these and stop it gracefully. A TERM that came
before this module ran (right after the fork) was only noted by the inherited handler; the
worker then exits here, before loading anything.
"""

from __future__ import annotations

import signal


def restore_default_signals() -> None:
    """In a granian worker still holding its main process's handlers, restore the defaults;
    exit if one of those signals came already (the handler only noted it)."""
    owner = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    if owner is None or not type(owner).__module__.startswith("granian."):
        return  # not a granian worker (gunicorn's, a script, a test)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # The inherited handler sets this on the child's copy of the server: a TERM that came
    # between the fork and now, which nothing else would act on.
    if getattr(owner, "interrupt_signal", False):
        raise SystemExit(0)
