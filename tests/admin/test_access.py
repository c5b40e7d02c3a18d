"""The console exists for admins only: 404 for everyone else on every route; CSRF on forms."""

from __future__ import annotations

import re

import pytest

from tests.admin.conftest import csrf_token

ARGS = {"job_id": "nojob", "report_id": "1-2-abc", "name": "index.html"}


def _admin_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: ARGS[m.group(1)], rule.rule)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, path


def test_there_are_admin_routes_to_check(app):
    routes = list(_admin_routes(app))
    assert len(routes) >= 15
    assert ("POST", "/admin/jobs/nojob/retry") in routes


@pytest.mark.parametrize("who", ["anonymous", "member", "member_token"])
def test_everyone_but_an_admin_gets_404_on_every_admin_route(app, client, member, alice, who):
    for method, path in _admin_routes(app):
        if who == "anonymous":
            response = client.open(path, method=method)
        elif who == "member":
            response = member.client.open(path, method=method, data={"csrf_token": member.token()})
        else:
            response = alice.client.open(path, method=method, headers=alice.headers)
        assert response.status_code == 404, (who, method, path, response.status_code)


def test_an_admin_reads_every_page(admin):
    for path in ["/admin/", "/admin/slow", "/admin/jobs", "/admin/live", "/admin/processes",
                 "/admin/profiles", "/admin/memory", "/admin/?window=1h&sort=p99",
                 "/admin/slow?window=1d"]:  # fmt: skip
        response = admin.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:500])


def test_every_admin_form_needs_its_csrf_token(app, admin):
    for method, path in _admin_routes(app):
        if method != "POST":
            continue
        response = admin.client.post(path, data={})
        assert response.status_code == 400, (path, response.status_code)


def test_the_console_speaks_chinese(admin):
    admin.client.set_cookie("todoscale_locale", "zh_Hans")
    page = admin.get("/admin/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "各端点的请求" in page
    assert "端点" in admin.get("/admin/profiles", headers={"Accept-Language": "zh-CN"}).get_data(
        as_text=True
    )


def test_forms_carry_their_token(admin):
    assert csrf_token(admin.get("/admin/profiles"))
    assert csrf_token(admin.get("/admin/memory"))
