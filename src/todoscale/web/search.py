"""The search page: every todo the user can see whose title (or notes) hold the words."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from markupsafe import Markup, escape

from todoscale.exceptions import BadRequestError
from todoscale.services import search
from todoscale.web.access import current_user, login_required
from todoscale.web.todos import PAGE_SIZE

bp = Blueprint("search", __name__)

# Characters of notes shown around their first match.
EXCERPT = 240


def _matcher(terms: list[str]) -> re.Pattern[str]:
    """Whole-word, any-case matches of `terms`, as the index matches them."""
    words = "|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{words})(?![^\W_])", re.IGNORECASE)


def highlight(text: str, terms: list[str]) -> Markup:
    """`text`, escaped, with each match of `terms` in `<mark>`: the user's text is never HTML."""
    if not terms:
        return escape(text)
    pieces: list[Markup] = []
    last = 0
    for match in _matcher(terms).finditer(text):
        pieces += [escape(text[last : match.start()]), Markup("<mark>%s</mark>") % match.group()]
        last = match.end()
    pieces.append(escape(text[last:]))
    return Markup("").join(pieces)


def excerpt(text: str, terms: list[str]) -> str:
    """About `EXCERPT` characters of `text` around its first match (all of a short text)."""
    if len(text) <= EXCERPT:
        return text
    match = _matcher(terms).search(text) if terms else None
    start = max(0, (match.start() if match else 0) - EXCERPT // 3)
    end = start + EXCERPT
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


@bp.get("/search")
@login_required
def index() -> ResponseReturnValue:
    """Search results, newest first, a page at a time; the form alone without a query."""
    query = request.args.get("q", "")
    context: dict[str, Any] = {"query": query, "results": None, "problem": None}
    if not query.strip():
        return render_template("web/search.html", **context, notes_searched=search.notes_searched())
    try:
        search.search_terms(query)
    except BadRequestError:
        context["problem"] = (
            _("Search for at most %(maximum)d characters.", maximum=search.QUERY_MAX)
            if len(query) > search.QUERY_MAX
            else _("Type at least one word, with letters or digits, to search for.")
        )
        return render_template(
            "web/search.html", **context, notes_searched=search.notes_searched()
        ), 400
    results = search.search_todos(
        current_user(),
        query,
        limit=PAGE_SIZE,
        cursor=request.args.get("cursor") or None,
        before=request.args.get("before") or None,
    )
    context["results"] = results
    return render_template("web/search.html", **context, notes_searched=results.notes_searched)


bp.add_app_template_filter(highlight, "highlight")
bp.add_app_template_filter(excerpt, "excerpt")


def _search_context() -> dict[str, int]:
    return {"search_max": search.QUERY_MAX}  # the search box in every page's header


bp.app_context_processor(_search_context)
