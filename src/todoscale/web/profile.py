"""The user's own page: language, time zone, password, API tokens, and logging out
everywhere."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import refresh

from todoscale.exceptions import ValidationError
from todoscale.services import profile, sessions, tokens
from todoscale.web.access import current_user, login_required, show_errors
from todoscale.web.forms import ExportForm, LanguageForm, PasswordForm, TimeZoneForm
from todoscale.web.zones import zone_choices, zone_label

bp = Blueprint("profile", __name__, url_prefix="/profile")


def _time_zone_form(form: TimeZoneForm | None = None) -> TimeZoneForm:
    form = form or TimeZoneForm(formdata=None, time_zone=current_user().time_zone or "")
    browser = g.get("browser_time_zone")
    follow = _("As my browser says (%(zone)s)", zone=zone_label(browser)) if browser else None
    form.time_zone.choices = zone_choices(follow or _("As my browser says"))
    return form


def _page(
    *,
    language: LanguageForm | None = None,
    time_zone: TimeZoneForm | None = None,
    password: PasswordForm | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    user = current_user()
    return render_template(
        "web/profile.html",
        language_form=language or LanguageForm(formdata=None, locale=user.locale or ""),
        time_zone_form=_time_zone_form(time_zone),
        password_form=password or PasswordForm(formdata=None),
        session_count=sessions.count_user_sessions(user),
        export_form=ExportForm(formdata=None),
        tokens=tokens.list_tokens(user),
    ), status


@bp.get("")
@login_required
def index() -> ResponseReturnValue:
    """The profile page."""
    return _page()


@bp.post("/language")
@login_required
def language() -> ResponseReturnValue:
    """Save the language of the pages."""
    form = LanguageForm()
    if not form.validate_on_submit():
        return _page(language=form, status=422)
    profile.set_locale(current_user(), form.locale.data or None)
    refresh()  # the message that confirms it is already in the new language
    flash(_("Language saved."), "success")
    return redirect(url_for(".index"))


@bp.post("/time-zone")
@login_required
def time_zone() -> ResponseReturnValue:
    """Save the time zone the pages show and take times in."""
    form = TimeZoneForm()
    if form.validate_on_submit():
        try:
            profile.set_time_zone(current_user(), form.time_zone.data or None)
        except ValidationError as exc:
            show_errors(form, exc.errors)
        else:
            refresh()  # the page it leads to shows times in the new zone
            flash(_("Time zone saved."), "success")
            return redirect(url_for(".index"))
    return _page(time_zone=form, status=422)


@bp.post("/password")
@login_required
def password() -> ResponseReturnValue:
    """Change the password; every session ends, this one too, and the user logs in again."""
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            profile.change_password(
                current_user(), form.current_password.data or "", form.new_password.data or ""
            )
        except ValidationError as exc:
            show_errors(form, exc.errors)
        else:
            session.clear()
            flash(_("Password changed. Log in with the new one."), "success")
            return redirect(url_for("auth.login"))
    return _page(password=form, status=422)


@bp.post("/tokens/<token_id>/revoke")
@login_required
def revoke_token(token_id: str) -> ResponseReturnValue:
    """Revoke one of the user's API tokens (a 404 page for any other id)."""
    tokens.revoke_user_token(current_user(), token_id)
    flash(_("The token is revoked: it no longer works anywhere."), "success")
    return redirect(url_for(".index"))


@bp.post("/sessions")
@login_required
def end_sessions() -> ResponseReturnValue:
    """Log out everywhere: every session of the user ends at once, this one too, and every
    API token is revoked."""
    sessions.end_user_sessions(current_user())
    session.clear()
    flash(_("You have logged out everywhere."), "success")
    return redirect(url_for("auth.login"))
