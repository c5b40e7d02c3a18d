"""On-demand profiles: the next N requests of an endpoint, on whichever process serves them.

A request is profiled with pyinstrument (in its own thread, at a 100 us interval: at the
default 1 ms a sub-millisecond request records nothing) when it claims a slot of the armed
order (`control`), or when it carries `X-Todoscale-Profile: 1` with an admin's bearer token.
Each report is saved as a pyinstrument session next to a small JSON description under
`<metrics folder>/profiles/`, kept to the newest `MAX_REPORTS`; the console renders them as
pyinstrument's HTML, as a speedscope flame graph, or combined into one call tree.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, request

from todoscale.instruments import PROFILES
from todoscale.ops import control
from todoscale.ops.metrics import (
    PROFILE_HEADER_ENVIRON,
    PROFILER_ENVIRON,
    of,
    service_name,
    watched,
)
from todoscale.services.accounts import user_for_token

if TYPE_CHECKING:  # pyinstrument is imported when a profile is taken, not by every process
    from pyinstrument.session import Session

INTERVAL = 0.0001
FOLDER = "profiles"
MAX_REPORTS = 200
HEADER_ORDER = "header"


class ActiveProfile:
    """A profile running for the request of this thread, finished by the metrics wrapper."""

    def __init__(self, root: Path, order_id: str, endpoint: str, view: str) -> None:
        self.root, self.order_id, self.endpoint, self.view = root, order_id, endpoint, view
        self.request_id = ""
        from pyinstrument import Profiler

        self.profiler = Profiler(interval=INTERVAL, async_mode="disabled")
        self.profiler.start()

    def finish(self, seconds: float, status: int) -> None:
        """Stop, save the session and its description, and keep the folder bounded."""
        session = self.profiler.stop()
        folder = self.root / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        report = f"{int(time.time() * 1000)}-{os.getpid()}-{secrets.token_hex(3)}"
        session.save(folder / f"{report}.pyisession")
        meta = {
            "id": report,
            "order": self.order_id,
            "endpoint": self.endpoint,
            "view": self.view,
            "pid": os.getpid(),
            "service": service_name(),
            "seconds": seconds,
            "status": status,
            "at": time.time(),
            "request_id": self.request_id,
        }
        (folder / f"{report}.json").write_text(json.dumps(meta))
        PROFILES.inc()
        _bound(folder)


def _bound(folder: Path) -> None:
    reports = sorted(folder.glob("*.json"))
    for old in reports[: max(0, len(reports) - MAX_REPORTS)]:
        old.unlink(missing_ok=True)
        old.with_suffix(".pyisession").unlink(missing_ok=True)


def _view_name(endpoint: str | None) -> str:
    view = current_app.view_functions.get(endpoint or "")
    return f"{view.__module__}.{view.__qualname__}" if view is not None else "?"


def _admin_header() -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user = user_for_token(token.strip()) if scheme.lower() == "bearer" else None
    return user is not None and bool(user.is_admin)


def _begin() -> None:
    """Before a request: profile it if it claims a slot of the armed order or asks as an admin."""
    if not watched():
        return  # the one check every request pays while nothing is armed (set by the wrapper)
    metrics = of(current_app)
    order = metrics.controls.order
    environ = request.environ
    rule = request.url_rule
    if rule is None:
        return
    order_id = None
    if environ.get(PROFILE_HEADER_ENVIRON) == "1" and _admin_header():
        order_id = HEADER_ORDER
    elif order is not None and order.endpoint == rule.rule:
        claimed = control.claim(metrics.root, rule.rule)
        order_id = claimed.id if claimed is not None else None
    if order_id is not None:
        profile = ActiveProfile(metrics.root, order_id, rule.rule, _view_name(request.endpoint))
        profile.request_id = request.headers.get("X-Request-ID", "")
        environ[PROFILER_ENVIRON] = profile


def reports(root: Path) -> list[dict[str, Any]]:
    """Every kept report's description, newest first."""
    found = [json.loads(path.read_text()) for path in (root / FOLDER).glob("*.json")]
    return sorted(found, key=lambda meta: meta["at"], reverse=True)


def load(root: Path, report_ids: list[str]) -> Session | None:
    """One report's session, or several combined into one call tree."""
    from pyinstrument.session import Session

    combined: Session | None = None
    for report in report_ids:
        if not report.replace("-", "").isalnum():
            continue  # ids are digits, a pid and hex: nothing else names a file of ours
        path = root / FOLDER / f"{report}.pyisession"
        if not path.exists():
            continue
        session = Session.load(path)
        combined = session if combined is None else Session.combine(combined, session)
    return combined


def render_html(session: Session) -> str:
    """pyinstrument's interactive HTML report (call tree and timeline)."""
    from pyinstrument.renderers import HTMLRenderer

    html: str = HTMLRenderer().render(session)
    return html


def render_speedscope(session: Session) -> str:
    """The session in speedscope's JSON format, for the flame graph viewer."""
    from pyinstrument.renderers import SpeedscopeRenderer

    text: str = SpeedscopeRenderer().render(session)
    return text


def init_app(app: Flask) -> None:
    """Check every request for a profile order (after the route is matched)."""
    app.before_request(_begin)
