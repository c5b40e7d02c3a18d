"""Versioned static URLs: content-hashed names, cached for good, still served by plain name."""

from __future__ import annotations

import re

from flask import url_for

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
