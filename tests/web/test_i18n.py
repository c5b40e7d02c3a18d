"""translations/ and auth/locale.py: complete catalogs, compiled, and no English left in Chinese."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import template_rendered

import todoscale
from tests.conftest import PROJECT_ROOT
from tests.web.conftest import PASSWORD, csrf_token
from todoscale.services import jobs, monitoring, transfer
from todoscale.services.reminders import send_due_reminders

PACKAGE = Path(todoscale.__file__).parent
TRANSLATIONS = PACKAGE / "translations"
TEMPLATES = PACKAGE / "templates"
LOCALES = ("en", "zh_Hans")
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "Message": None}


def _read(locale: str):
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_is_complete_and_its_mo_is_up_to_date(locale):
    catalog = _read(locale)
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, f"{locale}: fuzzy entry {message.id!r}"
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{locale}: untranslated {message.id!r}"
    mo = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo"
    with mo.open("rb") as file:
        compiled = read_mo(file)
    # The messages, not the bytes: a .mo's bytes embed the version of Babel that wrote it.
    assert _messages(compiled) == _messages(catalog), (
        f"{mo} does not match its .po: run `make translations` and commit both"
    )


def _messages(catalog) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Each message's id and translation, singular or plural alike, as tuples."""

    def strings(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
        return (value,) if isinstance(value, str) else tuple(value)

    return {strings(m.id): strings(m.string) for m in catalog if m.id}


def test_catalogs_hold_every_message_of_the_code():
    with (TRANSLATIONS / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(
            str(PROJECT_ROOT), method_map, options_map, keywords=KEYWORDS
        )
    }
    assert len(found) > 100
    for locale in LOCALES:
        ids = {m.id if isinstance(m.id, str) else m.id[0] for m in _read(locale) if m.id}
        assert found - ids == set(), f"{locale} misses messages: run `make translations`"
        assert ids - found == set(), f"{locale} has stale messages: run `make translations`"


def test_locale_comes_from_the_user_then_the_browser_then_english(ann):
    assert 'lang="en"' in ann.text("/")
    assert 'lang="zh-Hans"' in ann.text("/", headers={"Accept-Language": "zh-CN"})
    assert 'lang="zh-Hans"' in ann.text("/", headers={"Accept-Language": "zh-TW;q=0.9"})
    assert 'lang="en"' in ann.text("/", headers={"Accept-Language": "de, en;q=0.1"})
    ann.post("/profile/language", {"locale": "zh_Hans"})
    assert 'lang="zh-Hans"' in ann.text("/", headers={"Accept-Language": "en"})


def test_dates_are_shown_in_the_users_locale(ann):
    inbox = ann.inbox_id()
    ann.add_todo(inbox, "dated", due_at="2026-12-24")
    assert "Due Dec 24, 2026" in ann.text("/")
    ann.post("/profile/language", {"locale": "zh_Hans"})
    assert "截止 2026年12月24日" in ann.text("/")
    year = datetime.now(UTC).year
    assert f"添加于 {year}/" in ann.text("/")


class _Visible(HTMLParser):
    """The text a person reads or hears: text nodes and the attributes screen readers speak."""

    SPOKEN = ("title", "aria-label", "placeholder", "alt", "data-confirm")

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0
        self._untranslated: list[str] = []

    # <code> and translate="no" hold what is never translated: route rules, ids, file:line
    # (the admin console).
    def handle_starttag(self, tag, attrs):
        if ("translate", "no") in attrs:
            self._untranslated.append(tag)
            self._skip += 1
        if tag in ("script", "style", "code"):
            self._skip += 1
        self.parts.extend(value for name, value in attrs if name in self.SPOKEN and value)

    def handle_endtag(self, tag):
        if self._untranslated and self._untranslated[-1] == tag:
            self._untranslated.pop()
            self._skip -= 1
        if tag in ("script", "style", "code"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _visible(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return " ".join(parser.parts)


# Words that are not ours to translate: names, data the test typed, the language names.
ALLOWED_WORDS = {"todoscale", "English", "ann", "ben", "example", "com", "Family", "Weekend",
                 # the admin console's technical names: units, protocols, a header, commands
                 "SQL", "CPU", "MiB", "pid", "API", "JSON", "Socket",
                 "serve", "run"}  # fmt: skip
ALLOWED_WORDS |= {"CSV", "JSON", "csv"}  # file formats, and the extension of a file's name


def _pages_in_chinese(app, ann, ben):
    """Every page and every form error state, as a Chinese-speaking user sees them."""
    ann.post("/profile/language", {"locale": "zh_Hans"})
    ben.post("/profile/language", {"locale": "zh_Hans"})
    family = ann.new_list("Family")
    ann.post(f"/lists/{family}/members", {"username": "ben"})
    for n in range(12):
        ann.add_todo(family, f"买牛奶 {n}", notes="全脂", due_at="2026-12-24")
    with app.app_context():  # reminders of them, for the badge and the notifications page
        send_due_reminders(datetime(2026, 12, 23, 23, 50, tzinfo=UTC))
    home = ann.get(f"/lists/{family}")
    older = re.search(r'rel="next" href="([^"]+)"', home.get_data(as_text=True)).group(1)
    todo_id = re.search(r'id="todo-([0-9a-f]+)"', home.get_data(as_text=True)).group(1)
    zh = {"Accept-Language": "zh-CN"}
    anonymous = app.test_client()
    login = anonymous.get("/login", headers=zh)
    yield login
    yield anonymous.get("/register", headers=zh)
    yield anonymous.post(
        "/login",
        headers=zh,
        data={"csrf_token": csrf_token(login), "username": "ann", "password": "wrong"},
    )
    yield anonymous.post(
        "/register",
        headers=zh,
        data={"csrf_token": csrf_token(login), "username": "?", "email": "x", "password": "y"},
    )
    yield anonymous.post(
        "/register",
        headers=zh,
        data={
            "csrf_token": csrf_token(login),
            "username": "ann",
            "email": "n@example.com",
            "password": PASSWORD,
        },
    )
    yield anonymous.get("/nowhere", headers=zh)
    yield anonymous.post("/login", headers=zh)  # no CSRF token: 400
    yield ann.get("/")
    yield home
    yield ann.get(older.replace("&amp;", "&"))
    yield ann.get(f"/todos/{todo_id}/edit")
    yield ann.post(f"/todos/{todo_id}/edit", {"title": "", "due_at": "soon", "version": "1"})
    yield ann.post(f"/todos/{todo_id}/edit", {"title": "改了", "version": "0"})  # stale: 409
    yield ann.post(f"/lists/{family}/todos", {"title": " ", "notes": "长" * 10_001})
    yield ann.post("/lists", {"name": ""})
    yield ann.get(f"/lists/{family}/settings")
    yield ann.post(f"/lists/{family}/rename", {"name": ""})
    yield ann.post(f"/lists/{family}/members", {"username": "nobody"})
    yield ann.post(f"/lists/{family}/members", {"username": "ben"})
    yield ann.post(f"/lists/{ann.inbox_id()}/delete", follow_redirects=True)
    ann.api_token()  # the profile lists it
    yield ann.get("/profile")
    yield from _job_pages(app, ann, family)
    yield ann.get("/search")
    yield ann.get("/search?q=牛奶")
    yield ann.get("/search?q=!!")
    yield ann.get("/notifications")
    yield ann.post("/notifications/read", follow_redirects=True)
    yield ann.post("/profile/language", {"locale": "??"})
    yield ann.post(
        "/profile/password", {"current_password": "x", "new_password": "y", "confirm": "z"}
    )
    yield ann.post(
        "/profile/password",
        {"current_password": "x", "new_password": "long enough", "confirm": "long enough"},
    )
    yield ben.get(f"/lists/{family}")
    yield ben.get(f"/lists/{family}/settings")
    yield ben.post(f"/lists/{family}/rename", {"name": "Weekend"})  # 403
    yield ben.get(f"/lists/{ann.inbox_id()}")  # 404
    yield ben.client.delete("/profile")  # 405
    yield ben.post(f"/lists/{family}/members/ben/remove", follow_redirects=True)
    with app.app_context():  # the admin console, for an admin
        monitoring.set_admin("ann", True, by="test")
    for page in ("", "slow", "jobs", "live", "processes", "profiles", "memory"):
        yield ann.get(f"/admin/{page}")
    yield ann.post("/admin/memory/start", {"minutes": 1, "frames": 1}, follow_redirects=True)
    yield ann.post("/admin/memory/stop", follow_redirects=True)
    # Logged out, the login page follows the browser's language again.
    yield ann.post("/profile/sessions", follow_redirects=True, headers=zh)


def _job_pages(app, ann, family):
    """An export queued and done, an import refused, an import with bad rows, the jobs page."""
    export = ann.post("/jobs/exports", {"format": "csv", "list_id": family})
    job_id = export.headers["Location"].rsplit("job=", 1)[1]
    yield ann.get(export.headers["Location"])
    with app.app_context():
        jobs.run_job(job_id, worker_name="test")
    yield ann.get(f"/jobs/{job_id}")
    yield ann.post(
        f"/lists/{family}/import",
        {"file": (BytesIO(b"not an export"), "坏.csv")},
        content_type="multipart/form-data",
    )
    bad = transfer.render([{**dict.fromkeys(transfer.FIELDS), "title": " ", "notes": ""}], "csv")
    imported = ann.post(
        f"/lists/{family}/import",
        {"file": (BytesIO(bad), "坏.csv")},
        content_type="multipart/form-data",
    )
    import_id = imported.headers["Location"].rsplit("job=", 1)[1]
    with app.app_context():
        jobs.run_job(import_id, worker_name="test")
    yield ann.get(f"/jobs/{import_id}")
    yield ann.get("/profile/jobs")


def test_every_template_renders_in_chinese_without_english(app, ann, ben):
    english = [m for m in _read("en") if m.id]
    rendered: set[str] = set()

    def record(sender, template, context, **extra):
        rendered.add(template.name)

    template_rendered.connect(record, app)
    try:
        for response in _pages_in_chinese(app, ann, ben):
            html = response.get_data(as_text=True)
            assert 'lang="zh-Hans"' in html, response.request.path
            text = _visible(html)
            for message in english:
                msgid = message.id if isinstance(message.id, str) else message.id[0]
                for piece in re.split(r"%\(\w+\)[sd]", msgid):
                    piece = piece.strip(" .,:?()")
                    if len(piece) >= 3:
                        leftover = re.search(rf"(?<![A-Za-z]){re.escape(piece)}(?![A-Za-z])", text)
                        assert leftover is None, (response.request.path, msgid)
            words = set(re.findall(r"[A-Za-z]{3,}", text)) - ALLOWED_WORDS
            assert not words, (response.request.path, words)
    finally:
        template_rendered.disconnect(record, app)
    every = {str(path.relative_to(TEMPLATES)) for path in TEMPLATES.rglob("*.html")}
    # Partials (`_*.html`) and the layout render inside the pages, never on their own.
    pages = {name for name in every if not Path(name).name.startswith("_")} - {"base.html"}
    assert len(pages) >= 7 and pages <= rendered, pages - rendered
