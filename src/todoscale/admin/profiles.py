"""On-demand profiles: arm "the next N requests of an endpoint", list and open the reports."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from todoscale.admin.access import admin, client, root
from todoscale.admin.forms import ArmForm, ButtonForm
from todoscale.ops import control, profiling
from todoscale.ops.metrics import CSP_ENVIRON
from todoscale.services.audit import security_event

bp = Blueprint("profiles", __name__, url_prefix="/profiles")

# pyinstrument's report is one page with its own inline script: it gets a policy of its
# own, sandboxed (no cookies, no same-origin requests), that allows exactly that.
REPORT_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; sandbox allow-scripts"
)
SPEEDSCOPE_CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SPEEDSCOPE = "vendor/speedscope"  # `make vendor` fetches it from npm
COMBINED_MAX = 100


def _endpoints() -> list[str]:
    rules = {rule.rule for rule in current_app.url_map.iter_rules() if rule.endpoint != "static"}
    return sorted(rules)


@bp.get("")
def index() -> ResponseReturnValue:
    """The armed order, the form to arm one, and the reports kept."""
    form = ArmForm()
    form.endpoint.choices = _endpoints()
    return render_template(
        "admin/profiles.html",
        form=form,
        order=control.current_order(root()),
        reports=profiling.reports(root()),
        button=ButtonForm(),
    )


@bp.post("")
def arm() -> ResponseReturnValue:
    """Arm an order: the next N requests of the endpoint, on every process."""
    form = ArmForm()
    form.endpoint.choices = _endpoints()
    if not form.validate():
        for errors in form.errors.values():
            for message in errors:
                flash(str(message), "error")
        return redirect(url_for(".index"))
    order = control.arm(
        root(), form.endpoint.data, form.count.data, form.minutes.data * 60, admin().username
    )
    security_event(
        "admin.profile_armed",
        user=admin().username,
        address=client(),
        endpoint=order.endpoint,
        count=order.count,
    )
    flash(_("Profiling the next %(count)d requests of %(endpoint)s.", count=order.count,
            endpoint=order.endpoint), "success")  # fmt: skip
    return redirect(url_for(".index"))


@bp.post("/disarm")
def disarm() -> ResponseReturnValue:
    """Cancel the armed order."""
    control.disarm(root())
    security_event("admin.profile_disarmed", user=admin().username, address=client())
    flash(_("Profiling is off."), "success")
    return redirect(url_for(".index"))


def _session(report_ids: list[str]) -> Any:
    session = profiling.load(root(), report_ids[:COMBINED_MAX])
    if session is None:
        abort(404)
    return session


@bp.get("/<report_id>")
def report(report_id: str) -> ResponseReturnValue:
    """One report as pyinstrument's HTML (call tree and timeline)."""
    request.environ[CSP_ENVIRON] = REPORT_CSP
    return profiling.render_html(_session([report_id]))


@bp.get("/combined")
def combined() -> ResponseReturnValue:
    """Several reports (`?id=...` repeated, or every report of `?order=`) as one call tree."""
    ids = request.args.getlist("id")
    order = request.args.get("order")
    if order:
        ids = [meta["id"] for meta in profiling.reports(root()) if meta["order"] == order]
    request.environ[CSP_ENVIRON] = REPORT_CSP
    return profiling.render_html(_session(ids))


@bp.get("/<report_id>/flame")
def flame(report_id: str) -> ResponseReturnValue:
    """The report as a flame graph, in the speedscope viewer (vendored from npm, served here)."""
    _session([report_id])  # 404 for an unknown report
    data = url_for(".speedscope", report_id=report_id)
    viewer = url_for(".viewer", name="index.html")
    return redirect(f"{viewer}#profileURL={quote(data, safe='')}&title={quote(report_id)}")


@bp.get("/viewer/<path:name>")
def viewer(name: str) -> ResponseReturnValue:
    """speedscope's files; its script injects its styles, which this page's policy allows."""
    request.environ[CSP_ENVIRON] = SPEEDSCOPE_CSP
    folder = os.path.join(current_app.static_folder or "", SPEEDSCOPE)
    return send_from_directory(folder, name)


@bp.get("/<report_id>/speedscope.json")
def speedscope(report_id: str) -> ResponseReturnValue:
    """The report in speedscope's format (what the flame graph page loads)."""
    body = profiling.render_speedscope(_session([report_id]))
    return current_app.response_class(body, mimetype="application/json")
