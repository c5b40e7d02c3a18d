"""Hostile input to every form of the web UI and the admin console (issue 13, bad input at
scale): the classes the API already refuses (NUL and control characters, lone surrogates and
bytes that are not UTF-8, oversized and blank values, values the field cannot hold), plus
the usual probes (markup, SQL, format strings, paths, header injection), each sent in turn
in every field of every form, by a person allowed to use it.

Every answer must be a page, never a server error: a refusal is a 4xx page or the form shown
again, in HTML; an acceptance is a redirect. Whatever was accepted, nothing the API would
refuse may be stored: afterwards no text column of any table holds a NUL, a lone surrogate
or a replacement of an invalid byte.

The table below names every form route (a new POST route without a row fails the test).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from flask import Flask
from sqlalchemy import String, Text, select

from tests.chaos.figures import report
from tests.conftest import serving
from tests.test_access_matrix import MATRIX, OWNER, World
from tests.web.conftest import WebUser, csrf_token
from todoscale.extensions import db
from todoscale.models import Todo, User

# Values as the raw bytes of a form-encoded field, so that what no browser would send
# (a lone surrogate, bytes that are not UTF-8) reaches the server exactly as a client sent it.
HOSTILE: dict[str, bytes] = {
    "nul": b"milk\x00bread",
    "control": b"milk\x07\x1b[31mbread",
    "crlf-header": b"milk\r\nSet-Cookie: pwned=1",
    "lone-surrogate": b"milk\xed\xa0\x80",
    "not-utf8": b"milk\xff\xfe",
    "overlong-utf8": b"\xc0\xaf..\xc0\xaf",
    "empty": b"",
    "blank": b" \t  ",
    "huge": b"x" * 200_000,
    "rtl-override": "\u202egnp.exe".encode(),
    "zero-width": "\u200b\u200b".encode(),
    "markup": b"<script>alert(1)</script><img src=x onerror=alert(2)>",
    "sql": b"' OR 1=1; DROP TABLE todos; --",
    "format": b"%s%n%x{0}{__class__}",
    "path": b"../../../../etc/passwd",
    "number-overflow": b"1e309",
    "huge-integer": b"9" * 400,
    "negative": b"-1",
    "far-date": b"9999-12-31T23:59",
    "zero-date": b"0000-00-00T00:00",
}
# What the API refuses and so must never be stored: NUL, and what stands for a byte that was
# not UTF-8 (a lone surrogate, or the replacement character a lenient decoder puts there).
# Other control characters are text to both adapters alike (rules.check_text).
REFUSED_MARKS = (b"\x00", "\ufffd".encode(), b"\xed\xa0", b"\xed\xb0")

# Each form route with its fields (what a browser sends besides the CSRF token), and what
# else the route needs: the person allowed to use it and a file, where it takes one.
FORMS: dict[str, dict[str, Any]] = {
    "web.todos.create": {"title": "x", "notes": "", "due_at": "", "time_zone": "UTC"},
    "web.todos.edit": {
        "title": "changed", "notes": "", "due_at": "", "time_zone": "UTC", "version": "1",
    },
    "web.lists.create": {"name": "Mine"},
    "web.lists.rename": {"name": "Renamed"},
    "web.lists.share": {"username": "{stranger}"},
    "web.jobs.import_": {"format": "csv"},
    "web.jobs.export": {"format": "csv"},
    "web.profile.language": {"locale": "en"},
    "web.profile.time_zone": {"time_zone": "Europe/Paris"},
    "web.profile.password": {
        "current_password": "wrong horse battery",  # the change itself is not the point
        "new_password": "another horse battery",
        "confirm": "another horse battery",
    },
    "auth.login": {"username": "{member_name}", "password": "wrong horse battery", "next": "/"},
    "auth.register": {"username": "newcomer", "email": "new@example.com", "password": "x" * 12},
    "admin.profiles.arm": {"endpoint": "api.todos.index", "count": "3", "minutes": "5"},
    "admin.memory.start": {"minutes": "1", "frames": "5"},
}  # fmt: skip
# Form routes without fields of their own (a button): nothing to corrupt but the CSRF token,
# which the CSRF tests cover.
BUTTONS = {
    "web.todos.toggle", "web.todos.delete", "web.lists.delete", "web.lists.remove_member",
    "web.notifications.open_one", "web.notifications.read_all", "web.profile.end_sessions",
    "web.profile.revoke_token", "auth.logout", "admin.jobs.retry", "admin.memory.snapshot",
    "admin.memory.stop", "admin.profiles.disarm",
}  # fmt: skip
ADMIN = "admin"


@pytest.fixture
def serving_app(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The app as `make run` serves it, on the suite's database."""
    with serving(app, tmp_path_factory.mktemp("hostile")) as served:
        yield served


def _body(fields: dict[str, bytes]) -> bytes:
    return b"&".join(
        quote_from_bytes(name.encode()).encode() + b"=" + quote_from_bytes(value).encode()
        for name, value in fields.items()
    )


def _multipart(fields: dict[str, bytes]) -> tuple[bytes, str]:
    """A multipart body with `fields` as raw bytes and a small CSV file."""
    boundary = "hostileboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value
        + b"\r\n"
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="t.csv"\r\n'
        "Content-Type: text/csv\r\n\r\ntitle\nbread\n\r\n".encode()
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


def _admin(app: Flask) -> WebUser:
    person = WebUser(app)
    with app.app_context():
        user = db.session.execute(select(User).filter_by(username=person.username)).scalar_one()
        user.is_admin = True
        db.session.commit()
        db.session.remove()
    return person


def _stored_marks(app: Flask) -> list[str]:
    """Every text value of every table holding one of the REFUSED_MARKS."""
    found = []
    with app.app_context():
        for table in db.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            for row in db.session.execute(select(*columns)) if columns else ():
                for column, value in zip(columns, row, strict=True):
                    raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else b""
                    if any(mark in raw for mark in REFUSED_MARKS):
                        found.append(f"{table.name}.{column.name} = {value[:60]!r}")
        db.session.remove()
    return found


def _version(app: Flask, todo_id: str) -> bytes:
    """The todo's version as the edit form would show it now."""
    with app.app_context():
        version = db.session.get(Todo, todo_id).version  # type: ignore[union-attr]
        db.session.remove()
    return str(version).encode()


class Sender:
    """Sends one form as the person allowed to use it, with a CSRF token of their session."""

    def __init__(self, app: Flask, world: World) -> None:
        self.app, self.world = app, world
        self.admin = _admin(app)
        self.rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
        self.tokens: dict[int, bytes] = {}

    def send(self, endpoint: str, values: dict[str, bytes]) -> tuple[int, str, bytes]:
        """POST `values` (raw bytes) to the route: its status, content type and body."""
        anonymous = endpoint.startswith("auth.")
        if anonymous:
            client = self.app.test_client()
        elif endpoint.startswith("admin."):
            client = self.admin.client
        else:
            client = self.world.people[OWNER].client
        if id(client) not in self.tokens:  # a form token lives as long as its session
            self.tokens[id(client)] = csrf_token(client.get("/login" if anonymous else "/profile"))
        values = {**values, "csrf_token": self.tokens[id(client)].encode()}
        if anonymous:
            del self.tokens[id(client)]
        if endpoint == "web.jobs.import_":
            body, boundary = _multipart(values)
            content_type = f"multipart/form-data; boundary={boundary}"
        else:
            body, content_type = _body(values), "application/x-www-form-urlencoded"
        url = self.world.url(self.rules[endpoint])
        response = client.post(url, data=io.BytesIO(body), content_type=content_type)
        answer = (response.status_code, response.content_type, response.get_data())
        response.close()
        return answer


def _problem(where: str, status: int, content_type: str, body: bytes) -> str | None:
    """What is wrong with an answer to hostile input, if anything."""
    if status >= 500:
        return f"{where}: server error {status}"
    if 300 <= status < 400:
        return None if status in (302, 303) else f"{where}: unexpected {status}"
    if not content_type.startswith("text/html"):
        return f"{where}: {status} is not a page ({content_type})"
    if b"Traceback" in body:
        return f"{where}: a traceback on the page"
    return None


def test_every_form_answers_hostile_input_with_a_page_and_stores_none_of_it(
    serving_app: Flask,
) -> None:
    posts = {endpoint for endpoint, method in MATRIX if method == "POST"}
    web_forms = {e for e in posts if e.split(".")[0] in ("web", "auth", "admin")}
    assert web_forms == set(FORMS) | BUTTONS, (
        f"form routes without a row here: {sorted(web_forms - set(FORMS) - BUTTONS)}; "
        f"rows of routes that are gone: {sorted((set(FORMS) | BUTTONS) - web_forms)}"
    )
    world = World(serving_app)
    sender = Sender(serving_app, world)
    problems: list[str] = []
    answers: Counter[int] = Counter()
    for endpoint, fields in sorted(FORMS.items()):
        for field in fields:
            for kind, value in HOSTILE.items():
                values = {
                    name: world.fill(str(default)).encode() for name, default in fields.items()
                }
                if endpoint == "web.todos.edit":  # not stale: the check under test is the field's
                    values["version"] = _version(serving_app, world.todo_id)
                values[field] = value
                status, content_type, body = sender.send(endpoint, values)
                answers[status] += 1
                problem = _problem(f"{endpoint} {field}={kind}", status, content_type, body)
                problems += [problem] if problem else []
    stored = _stored_marks(serving_app)
    problems += [f"stored: {value}" for value in stored]
    server_errors = sum(n for status, n in answers.items() if status >= 500)
    report(
        "hostile-web-forms",
        f"{server_errors}_x_5xx,{len(stored)}_stored_in_{answers.total()}_requests"
        f"({len(FORMS)}_forms,{len(HOSTILE)}_classes,statuses:{dict(sorted(answers.items()))})",
        "0_x_5xx,0_hostile_values_stored,every_answer_a_page",
        held=not problems,
    )
    assert not problems, "\n".join(problems[:40])
