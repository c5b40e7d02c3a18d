"""Which language a request is answered in, and the translation of the rules' messages."""

from __future__ import annotations

from flask import g, request
from flask_babel import get_locale, gettext

from todoscale.services.rules import LOCALES, Message

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


def translate_message(message: str) -> str:
    """A validation message in the request's language (a rule's `Message`, or our own)."""
    if isinstance(message, Message):
        return gettext(message.template, **message.values)
    return str(message)


def template_context() -> dict[str, str]:
    """What every template needs to know of the language: its tag for `<html lang>`."""
    return {"html_lang": str(get_locale() or LOCALES[0]).replace("_", "-")}
