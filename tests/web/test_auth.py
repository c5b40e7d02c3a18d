"""auth/views.py and auth/sessions.py: registering, logging in and out, session cookies."""

from __future__ import annotations

import re

import pytest

from tests.web.conftest import COOKIE, PASSWORD, csrf_token


def test_register_page_renders(client):
    page = client.get("/register")
    assert page.status_code == 200
    assert 'name="username"' in page.get_data(as_text=True)


def test_register_logs_in_and_opens_the_inbox(ann):
    home = ann.text("/")
    assert "Inbox" in home and "ann" in home
    assert "Welcome to todoscale, ann." in home


def test_register_with_bad_input_keeps_the_input_and_writes_nothing(client, row_counts):
    page = client.get("/register")
    before = row_counts()
    response = client.post(
        "/register",
        data={
            "csrf_token": csrf_token(page),
            "username": "x!",
            "email": "not-an-email",
            "password": "short",
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="username-error"' in html and "must be 3-32 characters" in html
    assert 'id="email-error"' in html and "must be an email address" in html
    assert 'id="password-error"' in html and "must be at least 8 characters" in html
    assert 'value="x!"' in html and 'value="not-an-email"' in html
    assert 'value="short"' not in html  # passwords are never sent back
    assert row_counts()["users"] == before["users"] == 0


def sign_up(client, username: str, email: str, password: str = PASSWORD):
    """POST the sign-up form as a browser would, with the page's CSRF token."""
    page = client.get("/register")
    data = {"csrf_token": csrf_token(page), "username": username, "email": email}
    return client.post("/register", data={**data, "password": password})


def test_register_taken_username_and_email(web_user, client):
    web_user("taken")
    response = sign_up(client, "TAKEN", "new@example.com")
    assert response.status_code == 422
    assert "This username is taken" in response.get_data(as_text=True)
    response = sign_up(client, "fresh", "taken@example.com")
    assert response.status_code == 422
    assert "An account with this email exists already." in response.get_data(as_text=True)


def test_login_and_logout(ann):
    assert ann.post("/logout").headers["Location"] == "/login"
    assert ann.get("/").headers["Location"].startswith("/login")
    response = ann.log_in()
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Welcome back, ann." in ann.text("/")


def test_wrong_password_shows_the_form_again(ann):
    ann.post("/logout")
    response = ann.log_in(password="wrong password")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Wrong username or password." in html and 'value="ann"' in html
    assert ann.get("/").status_code == 302


def test_logout_is_a_post(ann):
    assert ann.get("/logout").status_code == 405
    assert ann.get("/").status_code == 200


def test_an_old_cookie_replayed_after_logout_gets_the_login_page(ann):
    old = ann.cookie()
    ann.post("/logout")
    ann.client.set_cookie(COOKIE, old)
    response = ann.get("/", follow_redirects=True)
    assert response.request.path == "/login"
    assert "ann" not in response.get_data(as_text=True).split("<main", 1)[0]


def test_login_issues_a_new_session_id(ann):
    ann.post("/logout")
    ann.get("/login")
    anonymous = ann.cookie()
    assert anonymous
    ann.log_in()
    assert ann.cookie() not in (None, anonymous)
    # The pre-login id (perhaps planted by someone else) opens nothing.
    ann.client.set_cookie(COOKIE, anonymous)
    assert ann.get("/").status_code == 302


def test_session_cookie_flags(app, client):
    page = client.get("/login")
    header = page.headers["Set-Cookie"]
    assert header.startswith(f"{COOKIE}=")
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert "Secure" not in header  # testing runs on http://


def test_the_cookie_is_secure_in_production(other_app):
    production = other_app(ENV_NAME="production", SECRET_KEY="x" * 32, REQUEST_LOG=False)
    header = production.test_client().get("/login").headers["Set-Cookie"]
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header


def test_production_names_the_cookie_for_this_host_only(other_app):
    production = other_app(ENV_NAME="production", SECRET_KEY="x" * 32, REQUEST_LOG=False)
    browser = production.test_client()
    https = {"base_url": "https://localhost", "headers": {"Referer": "https://localhost/"}}
    page = browser.get("/register", **https)
    form = {"username": "hana", "email": "hana@example.com", "password": PASSWORD}

    response = browser.post("/register", data={"csrf_token": csrf_token(page), **form}, **https)

    assert response.status_code == 302, response.get_data(as_text=True)
    header = response.headers["Set-Cookie"]
    assert header.startswith(f"__Host-{COOKIE}=")
    assert "Secure" in header and "Path=/" in header and "Domain" not in header
    assert browser.get("/", **https).status_code == 200, "the prefixed cookie opens the session"


def test_logout_tells_the_browser_to_drop_its_cache(ann):
    response = ann.post("/logout")

    assert response.headers["Clear-Site-Data"] == '"cache"'


def test_a_login_without_csrf_token_is_refused(web_user, client):
    web_user("carl")
    client.get("/login")
    response = client.post("/login", data={"username": "carl", "password": PASSWORD})
    assert response.status_code == 400
    assert "<html" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example/",
        "http:evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
        " //evil.example",
        "///evil.example",
        "evil.example",
        "data:text/html,hi",
    ],
)
def test_login_refuses_open_redirects(ann, target):
    ann.post("/logout")
    page = ann.get("/login", query_string={"next": target})
    response = ann.client.post(
        "/login",
        data={
            "csrf_token": csrf_token(page),
            "username": "ann",
            "password": PASSWORD,
            "next": target,
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_login_goes_back_to_the_page_asked_for(ann):
    list_id = ann.new_list("Work")
    ann.post("/logout")
    response = ann.get(f"/lists/{list_id}?cursor=")
    assert response.headers["Location"] == f"/login?next=/lists/{list_id}?cursor%3D"
    page = ann.get(response.headers["Location"])
    assert f'value="/lists/{list_id}?cursor="' in page.get_data(as_text=True)
    done = ann.client.post(
        "/login",
        data={
            "csrf_token": csrf_token(page),
            "username": "ann",
            "password": PASSWORD,
            "next": f"/lists/{list_id}",
        },
    )
    assert done.headers["Location"] == f"/lists/{list_id}"


def test_logged_in_visitors_of_the_login_pages_go_home(ann):
    assert ann.get("/login", query_string={"next": "//evil"}).headers["Location"] == "/"
    assert ann.get("/register").headers["Location"] == "/"


@pytest.mark.parametrize("username", ["alice\n", "alice\r\n", "\nalice"])
def test_register_refuses_a_username_with_a_newline_as_the_api_does(client, row_counts, username):
    # `$` matches before a final newline: "alice\n" must not pose as "alice" on a shared list.
    response = sign_up(client, username, "alice@example.com")
    assert response.status_code == 422
    assert 'id="username-error"' in response.get_data(as_text=True)
    api = client.post(
        "/api/v1/users",
        json={"username": username, "email": "alice@example.com", "password": PASSWORD},
    )
    assert api.status_code == 422
    assert set(api.get_json()["errors"]) == {"username"}
    assert row_counts()["users"] == 0


def test_sign_up_refuses_a_common_password_in_the_users_language(client, row_counts):
    response = sign_up(client, "carol", "carol@example.com", password="iloveyou1")
    assert response.status_code == 422
    assert "is one of the most common passwords" in response.get_data(as_text=True)
    page = client.get("/register", headers={"Accept-Language": "zh-CN"})
    data = {"csrf_token": csrf_token(page), "username": "carol", "email": "carol@example.com"}
    response = client.post(
        "/register", data={**data, "password": "iloveyou1"}, headers={"Accept-Language": "zh-CN"}
    )
    assert response.status_code == 422
    assert "最常见的密码" in response.get_data(as_text=True)
    assert row_counts()["users"] == 0


def test_password_fields_are_masked_and_welcome_password_managers(ann, client):
    # Masked (type=password), labelled for managers (autocomplete), pasting never blocked.
    pages = [client.get("/login"), client.get("/register"), ann.get("/profile")]
    for page in pages:
        html = page.get_data(as_text=True)
        fields = re.findall(r"<input[^>]*password[^>]*>", html)
        assert fields, page.request.path
        for field in fields:
            assert 'type="password"' in field and "autocomplete=" in field, field
        assert "onpaste" not in html and "oncopy" not in html
