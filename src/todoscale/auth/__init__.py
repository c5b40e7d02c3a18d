"""Browser login: server-side sessions, the login pages, the login throttle, and the language
and time zone of each request."""

from flask import Flask

from todoscale.auth import throttle
from todoscale.auth.locale import (
    read_browser_time_zone,
    select_locale,
    select_timezone,
    template_context,
    translate_message,
)
from todoscale.auth.sessions import DatabaseSessionInterface, load_user
from todoscale.auth.views import bp
from todoscale.web_extensions import babel, csrf


def init_app(app: Flask) -> None:
    """Sessions in the database, CSRF tokens, translations, and `g.user` and
    `g.browser_time_zone` on every request."""
    app.session_interface = DatabaseSessionInterface()
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.before_request(load_user)
    throttle.init_app(app)  # after load_user: a password change names the logged-in account
    app.before_request(read_browser_time_zone)
    app.add_template_filter(translate_message, "translate_message")
    app.context_processor(template_context)


__all__ = ["bp", "init_app"]
