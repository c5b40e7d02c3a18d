"""The forms of the login pages: shape only; the rules are the services'."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField


class LoginForm(FlaskForm):
    """Username and password, and where to go next."""

    username = StringField(_l("Username"), render_kw={"autocomplete": "username"})
    password = PasswordField(_l("Password"), render_kw={"autocomplete": "current-password"})
    next = HiddenField()


class RegisterForm(FlaskForm):
    """A new account."""

    username = StringField(_l("Username"), render_kw={"autocomplete": "username"})
    email = EmailField(_l("Email"), render_kw={"autocomplete": "email"})
    password = PasswordField(_l("Password"), render_kw={"autocomplete": "new-password"})
