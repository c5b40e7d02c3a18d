"""Browser login: server-side sessions, the login pages, and the language of each request."""

from flask import Flask

from todoscale.auth.locale import select_locale, template_context, translate_message
from todoscale.auth.sessions import DatabaseSessionInterface, load_user
from todoscale.auth.views import bp
from todoscale.extensions import babel, csrf


def init_app(app: Flask) -> None:
    """Sessions in the database, CSRF tokens, translations, and `g.user` on every request."""
    app.session_interface = DatabaseSessionInterface()
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    app.before_request(load_user)
    app.add_template_filter(translate_message, "translate_message")
    app.context_processor(template_context)


__all__ = ["bp", "init_app"]
