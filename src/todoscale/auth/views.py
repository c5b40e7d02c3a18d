"""Register, log in, log out."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from todoscale.auth.forms import LoginForm, RegisterForm
from todoscale.auth.redirects import safe_next
from todoscale.auth.sessions import log_in, log_out
from todoscale.exceptions import AuthenticationError, ConflictError, ValidationError
from todoscale.services.accounts import authenticate, find_user, register_user
from todoscale.services.rules import PASSWORD_MIN
from todoscale.web_extensions import csrf

bp = Blueprint("auth", __name__)
bp.before_request(csrf.protect)

HOME = "web.todos.index"


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login form; on success, go where the user was heading (a local path only)."""
    target = safe_next(request.values.get("next"))
    if g.user is not None:
        return redirect(target or url_for(HOME))
    form = LoginForm(next=target or "")
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form)
    try:
        user = authenticate(form.username.data or "", form.password.data or "")
    except AuthenticationError:
        form.password.errors = [_("Wrong username or password.")]
        return render_template("auth/login.html", form=form), 422
    log_in(user)
    flash(_("Welcome back, %(name)s.", name=user.username), "success")
    return redirect(target or url_for(HOME))


@bp.route("/register", methods=["GET", "POST"])
def register() -> ResponseReturnValue:
    """The sign-up form; a new account is logged in at once."""
    if g.user is not None:
        return redirect(url_for(HOME))
    form = RegisterForm()
    if not form.validate_on_submit():
        return _register_page(form)
    username, email = form.username.data or "", form.email.data or ""
    try:
        user = register_user(username, email, form.password.data or "")
    except ValidationError as exc:
        for name, messages in exc.errors.items():
            form[name].errors = list(messages)
        return _register_page(form, 422)
    except ConflictError:
        if find_user(username) is not None:
            form.username.errors = [_("This username is taken; choose another.")]
        else:
            form.email.errors = [_("An account with this email exists already.")]
        return _register_page(form, 422)
    log_in(user)
    flash(_("Welcome to todoscale, %(name)s.", name=user.username), "success")
    return redirect(url_for(HOME))


def _register_page(form: RegisterForm, status: int = 200) -> ResponseReturnValue:
    return render_template("auth/register.html", form=form, password_min=PASSWORD_MIN), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End this browser's session at once: a copy of the cookie opens nothing afterwards.

    A plain POST with the CSRF token (checked before every view of the blueprint).
    """
    if g.user is not None:
        log_out()
        flash(_("You have logged out."), "success")
    response = redirect(url_for("auth.login"))
    # The browser drops what it kept of the pages this session saw (no-store aside, its
    # back-forward cache may hold them).
    response.headers["Clear-Site-Data"] = '"cache"'
    return response
