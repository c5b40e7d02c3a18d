"""Versioned static URLs: content-hashed names, cached for good, still served by plain name."""

from __future__ import annotations

import hashlib
import os
import re

import pytest
from flask import url_for

from todoscale.ops import static
from todoscale.ops.static import hashed_name

HASHED = re.compile(r"^/static/app\.[0-9a-f]{12}\.css$")


def test_static_urls_carry_the_files_content_hash(app):
    with app.test_request_context():
        url = url_for("static", filename="app.css")

    assert HASHED.match(url), url


def test_the_hash_changes_with_the_content(tmp_path):
    (tmp_path / "site.css").write_text("body { color: red }")
    before = hashed_name(str(tmp_path), "site.css")
    (tmp_path / "site.css").write_text("body { color: blue }")

    after = hashed_name(str(tmp_path), "site.css")

    assert before != after
    assert re.fullmatch(r"site\.[0-9a-f]{12}\.css", after)


def test_a_missing_file_keeps_its_plain_name(tmp_path):
    assert hashed_name(str(tmp_path), "nothing.css") == "nothing.css"
    assert hashed_name(str(tmp_path), ".") == "."


def test_a_hashed_name_is_cached_for_a_year(app, client):
    with app.test_request_context():
        url = url_for("static", filename="app.js")

    response = client.get(url)

    assert response.status_code == 200
    assert response.cache_control.max_age == 365 * 24 * 3600
    assert response.cache_control.immutable and not response.cache_control.no_cache
    response.close()


def test_a_plain_name_is_served_but_revalidated(client):
    response = client.get("/static/app.css")

    assert response.status_code == 200
    assert response.cache_control.max_age is None
    response.close()


def test_a_stale_hash_is_not_found(client):
    response = client.get("/static/app.000000000000.css")

    assert response.status_code == 404


def test_pages_link_the_hashed_names(client):
    page = client.get("/login").get_data(as_text=True)

    assert re.search(r'href="/static/app\.[0-9a-f]{12}\.css"', page)
    assert re.search(r'src="/static/app\.[0-9a-f]{12}\.js"', page)


def test_a_name_outside_the_static_folder_is_never_read(tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (tmp_path / "secret.txt").write_text("not for the web")
    assert hashed_name(str(static), "../secret.txt") == "../secret.txt"
    assert hashed_name(str(static), str(tmp_path / "secret.txt")).endswith("secret.txt")
    assert not re.search(r"\.[0-9a-f]{12}\.txt$", hashed_name(str(static), "/etc/hostname"))


@pytest.mark.parametrize("prefix", ["../", "..%2f", "%2e%2e/", "vendor/../../"])
def test_the_static_route_reads_no_file_outside_its_folder(app, client, monkeypatch, prefix):
    # A hashed name is checked by hashing the file it names: that must never be a file
    # outside static/ (the route would read any file the process can, e.g. a huge one).
    source = os.path.join(os.path.dirname(app.static_folder), "app.py")
    with open(source, "rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()[:12]
    hashed: list[str] = []
    real = static._digest

    def recording(path: str, mtime_ns: int, size: int) -> str:
        hashed.append(os.path.realpath(path))
        return real(path, mtime_ns, size)

    monkeypatch.setattr(static, "_digest", recording)

    response = client.get(f"/static/{prefix}app.{digest}.py")

    assert response.status_code == 404
    folder = os.path.realpath(app.static_folder) + os.sep
    assert [path for path in hashed if not path.startswith(folder)] == []
