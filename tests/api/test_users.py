"""POST /api/v1/users, GET /api/v1/users/me and /api/v1/users/{id}."""

from __future__ import annotations

import pytest

from tests.conftest import assert_shape
from todoscale.api.schemas import ListRead, UserRead

USERS = "/api/v1/users"


def _register(client, username="carol", email=None, password="long enough pw"):
    return client.post(
        USERS,
        json={
            "username": username,
            "email": email or f"{username}@example.com",
            "password": password,
        },
    )


def test_register_answers_201_with_the_user_and_its_location(client):
    response = _register(client, "carol", "Carol@Example.com")

    assert response.status_code == 201
    user = response.get_json()
    assert_shape(UserRead, user)
    assert user["username"] == "carol"
    assert user["email"] == "carol@example.com"
    assert response.headers["Location"] == user["url"]
    assert user["url"].endswith(f"/api/v1/users/{user['id']}")


def test_user_never_shows_a_password_or_its_hash(client):
    response = _register(client, "carol", password="long enough pw")

    body = response.get_data(as_text=True)
    assert "password" not in body
    assert "argon2" not in body
    assert "long enough pw" not in body


def test_registration_creates_the_default_inbox(alice):
    lists = alice.get("/api/v1/lists").get_json()["items"]

    assert len(lists) == 1
    assert_shape(ListRead, lists[0])
    assert lists[0]["name"] == "Inbox"
    assert lists[0]["is_default"] is True
    assert lists[0]["owner"] == "alice"
    assert lists[0]["members"] == ["alice"]
    assert lists[0]["todo_count"] == 0


@pytest.mark.parametrize("username", ["alice", "ALICE", "Alice"])
def test_taken_username_is_409_whatever_its_case(client, alice, row_counts, username):
    before = row_counts()

    response = _register(client, username, email="other@example.com")

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert "username" in response.get_json()["detail"]
    assert row_counts() == before


@pytest.mark.parametrize("email", ["alice@example.com", "ALICE@example.COM", " alice@example.com "])
def test_taken_email_is_409(client, alice, row_counts, email):
    before = row_counts()

    response = _register(client, "someone", email=email)

    assert response.status_code == 409
    assert "email" in response.get_json()["detail"]
    assert row_counts() == before


@pytest.mark.parametrize(
    ("field", "username", "email", "password"),
    [
        ("username", "ab", "a@example.com", "long enough pw"),
        ("username", "a" * 33, "a@example.com", "long enough pw"),
        ("username", "has space", "a@example.com", "long enough pw"),
        ("username", "ünïcode", "a@example.com", "long enough pw"),
        ("username", "semi;colon", "a@example.com", "long enough pw"),
        ("password", "carol", "carol@example.com", "seven77"),
        ("password", "carol", "carol@example.com", "12345678"),
        ("password", "carol", "carol@example.com", "Password123"),
        ("email", "carol", "not-an-email", "long enough pw"),
        ("email", "carol", "a" * 250 + "@example.com", "long enough pw"),
    ],
)
def test_invalid_registration_is_422_naming_the_field(
    client, row_counts, field, username, email, password
):
    before = row_counts()

    response = _register(client, username, email=email, password=password)

    assert response.status_code == 422
    problem = response.get_json()
    assert problem["status"] == 422
    assert set(problem["errors"]) == {field}
    assert all(isinstance(message, str) for message in problem["errors"][field])
    assert row_counts() == before


@pytest.mark.parametrize("username", ["abc", "a" * 32, "A.b-c_9"])
def test_usernames_at_the_edges_of_the_rule_are_accepted(client, username):
    assert _register(client, username, email="edge@example.com").status_code == 201


def test_eight_character_password_is_enough(client):
    assert _register(client, "carol", password="k3v!np0q").status_code == 201


def test_me_returns_the_caller(alice, bob):
    response = bob.get(f"{USERS}/me")

    assert response.status_code == 200
    assert_shape(UserRead, response.get_json())
    assert response.get_json() == bob.user


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer ", "Bearer not-a-token", "Basic YWxpY2U6eA==", "Token abc"],
)
def test_me_without_valid_credentials_is_401_with_www_authenticate(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    response = client.get(f"{USERS}/me", headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 401


def test_user_url_answers_the_user(alice):
    response = alice.get(alice.user["url"])

    assert response.status_code == 200
    assert response.get_json() == alice.user


def test_another_users_url_is_404(alice, bob):
    assert alice.get(bob.user["url"]).status_code == 404
