"""The app the real-server tests serve: todoscale, plus a view that holds its request.

`GET /test/hold` notes its worker's pid in TEST_HOLD_DIR and returns when a `release` file
appears there (or after 30 s): a request in flight for as long as a test needs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from todoscale.deploy.granian_worker import restore_default_signals

restore_default_signals()  # as todoscale.wsgi does first: a TERM while this loads ends it

from todoscale import create_app  # noqa: E402

app = create_app(migrations=False)


@app.get("/test/hold")
def hold() -> dict[str, int]:
    """Stay in flight until released."""
    folder = Path(os.environ["TEST_HOLD_DIR"])
    (folder / str(os.getpid())).write_text("holding")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (folder / "release").exists():
        time.sleep(0.02)
    return {"pid": os.getpid()}
