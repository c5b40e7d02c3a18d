"""Leak hunting: a tracemalloc window on every process, snapshots, growth by line and type."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from todoscale.admin.access import admin, client, root
from todoscale.admin.forms import ButtonForm, LeakForm
from todoscale.ops import leaks
from todoscale.services.audit import security_event

bp = Blueprint("memory", __name__, url_prefix="/memory")


@bp.get("")
def index() -> ResponseReturnValue:
    """The open window, its snapshots per process, and the growth between two of them."""
    window = leaks.current_window(root())
    windows = leaks.windows(root())
    chosen = request.args.get("window") or (windows[0] if windows else None)
    taken = leaks.snapshots(root(), chosen) if chosen in windows else {}
    newer = request.args.get("newer", type=int)
    older = request.args.get("older", type=int)
    per_pid, objects = {}, {}
    for pid, items in taken.items():
        numbers: list[int] = [item["number"] for item in items]
        new = newer if newer is not None and newer in numbers else numbers[-1]
        old = older if older is not None and older in numbers and older < new else new - 1
        if old >= 0 and old in numbers:
            per_pid[pid] = leaks.growth(root(), chosen or "", pid, old, new)
            objects[pid] = next(item["growth"] for item in items if item["number"] == new)
    return render_template(
        "admin/memory.html",
        form=LeakForm(),
        button=ButtonForm(),
        window=window,
        windows=windows,
        chosen=chosen,
        taken=taken,
        per_pid=per_pid,
        merged=leaks.merged_growth(per_pid),
        objects=objects,
    )


@bp.post("/start")
def start() -> ResponseReturnValue:
    """Open a tracing window on every process."""
    form = LeakForm()
    if not form.validate():
        abort(400)
    window = leaks.open_window(root(), form.minutes.data, form.frames.data, admin().username)
    security_event("admin.memory_window_opened", user=admin().username, address=client(),
                   minutes=form.minutes.data, frames=window.frames)  # fmt: skip
    flash(_("Memory tracing is on for %(minutes)d minutes.", minutes=form.minutes.data), "success")
    return redirect(url_for(".index"))


@bp.post("/snapshot")
def snapshot() -> ResponseReturnValue:
    """Ask every process for a snapshot."""
    window = leaks.ask_snapshot(root())
    if window is None:
        flash(_("Start memory tracing first."), "error")
    else:
        security_event("admin.memory_snapshot", user=admin().username, address=client())
        flash(_("Every process takes snapshot %(number)d within a second or two.",
                number=window.snapshots), "success")  # fmt: skip
    return redirect(url_for(".index"))


@bp.post("/stop")
def stop() -> ResponseReturnValue:
    """Close the window: every process stops tracing."""
    leaks.close_window(root())
    security_event("admin.memory_window_closed", user=admin().username, address=client())
    flash(_("Memory tracing is off."), "success")
    return redirect(url_for(".index"))
