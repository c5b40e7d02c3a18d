"""The web UI's live updates: the vendored Socket.IO client, served by us, and the page hooks."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import todoscale

VENDOR = Path(todoscale.__file__).parent / "static" / "vendor"


def test_the_vendored_client_is_socket_io_4_which_python_socketio_5_speaks():
    with open(f"{VENDOR}/socket.io.min.js", encoding="utf-8") as script:
        banner = script.read(200)
    match = re.search(r"Socket\.IO v(\d+)\.(\d+)\.(\d+)", banner)
    assert match, banner
    assert match.group(1) == "4"  # Engine.IO protocol 4, as python-engineio 4.x serves
    assert version("python-socketio").split(".")[0] == "5"
    assert version("python-engineio").split(".")[0] == "4"
    with open(f"{VENDOR}/socket.io.LICENSE", encoding="utf-8") as license_file:
        assert "Permission is hereby granted" in license_file.read()  # MIT, kept beside it


def test_logged_in_pages_load_the_client_from_us_and_the_csp_allows_it(app, ann):
    response = ann.get("/")
    html = response.get_data(as_text=True)
    pattern = r'<script src="(/static/vendor/socket\.io\.min\.[0-9a-f]{12}\.js)" defer>'
    src = re.search(pattern, html)
    assert src, "no vendored Socket.IO client on the page"
    app_js = re.search(r"/static/app\.[0-9a-f]{12}\.js", html)
    assert app_js and src.start() < app_js.start()  # defer: runs before the page's script
    script = ann.get(src.group(1))
    try:
        assert script.status_code == 200
        assert script.mimetype in ("text/javascript", "application/javascript")
        assert "immutable" in script.headers["Cache-Control"]
        assert script.get_data().startswith(b"/*!\n * Socket.IO v4.")
    finally:
        script.close()
    csp = dict(
        part.strip().split(" ", 1)
        for part in response.headers["Content-Security-Policy"].split(";")
    )
    assert "'self'" in csp["default-src"].split()  # scripts: our own files only
    assert "script-src" not in csp or "'unsafe-inline'" not in csp["script-src"]
    assert "'self'" in csp["connect-src"].split()  # the same-origin Socket.IO connection


def test_anonymous_pages_do_not_load_the_client(app):
    html = app.test_client().get("/login").get_data(as_text=True)
    assert "socket.io" not in html


def test_the_list_page_carries_the_hooks_live_updates_need(ann):
    inbox = ann.inbox_id()
    html = ann.text(f"/lists/{inbox}")
    assert f'id="todos" data-list-id="{inbox}" data-first-page hidden' in html
    assert '<p class="empty" id="todos-empty">' in html
    template = html.split('<template id="todo-template"', 1)[1].split("</template>", 1)[0]
    assert 'data-added="Added %%3%%" data-due="Due %%3%%"' in template
    assert 'id="todo-00000000000000000000000000000000"' in template
    assert 'data-label="Done: %%1%%"' in template
    assert 'name="csrf_token"' in template
    for n in range(11):
        ann.add_todo(inbox, f"t{n}")
    first = ann.text(f"/lists/{inbox}")
    assert "data-first-page" in first
    assert '<p class="empty" id="todos-empty" hidden>' in first
    older = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "data-first-page" not in ann.text(older)  # new todos belong on the first page only
