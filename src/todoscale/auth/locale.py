"""Which language and time zone a request is answered in, and the translation of the rules'
messages."""

from __future__ import annotations

from flask import g, request
from flask_babel import get_locale, get_timezone, gettext

from todoscale.exceptions import ValidationError
from todoscale.services.rules import LOCALES, Message, check_time_zone

# The browser's own time zone, as static/app.js reads it from Intl and stores it on every page.
TIME_ZONE_COOKIE = "todoscale_tz"
# Where no one said otherwise (no choice in the profile, no script to ask the browser).
DEFAULT_TIME_ZONE = "UTC"

# Language tags a browser may send, and the catalog each one gets.
_OFFERED = {
    "en": "en",
    "zh-Hans": "zh_Hans",
    "zh-CN": "zh_Hans",
    "zh-SG": "zh_Hans",
    "zh": "zh_Hans",
}


def select_locale() -> str:
    """The user's saved choice, else the browser's `Accept-Language`, else English."""
    user = g.get("user")
    if user is not None and user.locale in LOCALES:
        return str(user.locale)
    match = request.accept_languages.best_match(_OFFERED)
    return _OFFERED[match] if match else LOCALES[0]


def read_browser_time_zone() -> None:
    """Before each request: `g.browser_time_zone` is the browser's zone (its cookie), or None."""
    zone = request.cookies.get(TIME_ZONE_COOKIE, "")
    try:
        g.browser_time_zone = check_time_zone(zone) if zone else None
    except ValidationError:
        g.browser_time_zone = None  # not a zone: as if the browser had said nothing


def time_zone_source() -> str:
    """Whose time zone the request shows: `profile` (the user's choice), `browser`, `default`."""
    user = g.get("user")
    if user is not None and user.time_zone:
        return "profile"
    return "browser" if g.get("browser_time_zone") else "default"


def select_timezone() -> str:
    """The user's saved time zone, else the browser's, else UTC."""
    source = time_zone_source()
    if source == "profile":
        return str(g.user.time_zone)
    return str(g.browser_time_zone) if source == "browser" else DEFAULT_TIME_ZONE


def translate_message(message: str) -> str:
    """A validation message in the request's language (a rule's `Message`, or our own)."""
    if isinstance(message, Message):
        return gettext(message.template, **message.values)
    return str(message)


def template_context() -> dict[str, str]:
    """What every template needs to know of the language (its tag for `<html lang>`) and of
    the time zone the page shows times in (its IANA name, and whose it is)."""
    return {
        "html_lang": str(get_locale() or LOCALES[0]).replace("_", "-"),
        "time_zone": str(get_timezone()),
        "time_zone_source": time_zone_source(),
    }
