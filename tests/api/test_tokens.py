"""POST and DELETE /api/v1/tokens: HTTP Basic in, bearer tokens out, expiry and revocation."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from tests.conftest import assert_shape
from todoscale.api.schemas import TokenRead
from todoscale.extensions import db
from todoscale.models import ApiToken, User
from todoscale.services import accounts

TOKENS = "/api/v1/tokens"
ME = "/api/v1/users/me"


def _basic(username: str, password: str) -> dict[str, str]:
    creds = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {creds}"}


def _password_hash(app, username: str) -> str:
    with app.app_context():
        return db.session.scalar(select(User.password_hash).where(User.username == username))


def test_basic_credentials_get_a_token_with_its_expiry(app, client, alice):
    started = datetime.now(UTC)

    response = client.post(TOKENS, headers=_basic("alice", alice.password))

    assert response.status_code == 201
    body = response.get_json()
    assert_shape(TokenRead, body)
    expires_at = datetime.fromisoformat(body["expires_at"])
    ttl = timedelta(seconds=app.config["TOKEN_TTL_SECONDS"])
    assert started + ttl <= expires_at <= datetime.now(UTC) + ttl
    me = client.get(ME, headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.get_json()["username"] == "alice"


def test_each_login_gets_a_different_token(alice):
    assert alice.new_token() != alice.new_token()


def test_username_is_matched_regardless_of_case(client, alice):
    assert client.post(TOKENS, headers=_basic("ALICE", alice.password)).status_code == 201


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _basic("alice", "wrong password"),
        _basic("nobody", "correct horse battery"),
        _basic("", "correct horse battery"),
        _basic("a" * 200, "correct horse battery"),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer something"},
    ],
    ids=["none", "wrong-password", "unknown-user", "empty-user", "long-user", "garbage", "bearer"],
)
def test_bad_credentials_are_401_with_a_basic_challenge(client, alice, row_counts, headers):
    before = row_counts()

    response = client.post(TOKENS, headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.mimetype == "application/problem+json"
    assert row_counts() == before


def test_revoked_token_stops_working_at_once(client, alice):
    other = alice.new_token()

    response = alice.delete(TOKENS)

    assert response.status_code == 204
    assert response.get_data() == b""
    assert alice.get(ME).status_code == 401
    assert alice.get("/api/v1/lists").status_code == 401
    assert alice.delete(TOKENS).status_code == 401
    assert client.get(ME, headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_revoking_without_a_token_is_401(client):
    response = client.delete(TOKENS)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_issued_with_a_zero_lifetime_is_already_expired(app, alice, monkeypatch):
    monkeypatch.setitem(app.config, "TOKEN_TTL_SECONDS", 0)
    alice.token = alice.new_token()

    response = alice.get(ME)

    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_token_past_its_expiry_is_rejected(app, alice, monkeypatch):
    assert alice.get(ME).status_code == 200  # the lookup is now in the local cache too
    later = datetime.now(UTC) + timedelta(seconds=app.config["TOKEN_TTL_SECONDS"] + 1)
    monkeypatch.setattr(accounts, "utcnow", lambda: later)

    assert alice.get(ME).status_code == 401


def test_login_rehashes_the_password_when_argon2_parameters_change(app, client, alice, monkeypatch):
    old_hash = _password_hash(app, "alice")
    time_cost = app.config["ARGON2_TIME_COST"] + 1
    monkeypatch.setitem(app.config, "ARGON2_TIME_COST", time_cost)

    assert client.post(TOKENS, headers=_basic("alice", alice.password)).status_code == 201

    new_hash = _password_hash(app, "alice")
    assert new_hash != old_hash
    assert f"t={time_cost}" in new_hash
    assert client.post(TOKENS, headers=_basic("alice", alice.password)).status_code == 201
    assert _password_hash(app, "alice") == new_hash


def test_login_keeps_the_hash_when_parameters_are_unchanged(app, client, alice):
    old_hash = _password_hash(app, "alice")

    assert client.post(TOKENS, headers=_basic("alice", alice.password)).status_code == 201

    assert _password_hash(app, "alice") == old_hash


def test_failed_login_does_not_rehash(app, client, alice, monkeypatch):
    old_hash = _password_hash(app, "alice")
    monkeypatch.setitem(app.config, "ARGON2_TIME_COST", app.config["ARGON2_TIME_COST"] + 1)

    assert client.post(TOKENS, headers=_basic("alice", "wrong password")).status_code == 401

    assert _password_hash(app, "alice") == old_hash


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "not her password"),
        ("nobody-by-that-name", "any password"),
        ("x" * 33, "any password"),  # longer than any username: not even looked up
    ],
)
def test_a_failed_login_costs_one_argon2_run_whether_or_not_the_user_exists(
    client, alice, argon2_runs, username, password
):
    # Equal work, so the time taken tells nobody which usernames exist.
    response = client.post("/api/v1/tokens", headers=_basic(username, password))
    assert response.status_code == 401
    assert argon2_runs == ["verify"]


def test_a_successful_login_costs_one_argon2_run(client, alice, argon2_runs):
    assert client.post("/api/v1/tokens", headers=_basic("alice", alice.password)).status_code == 201
    assert argon2_runs == ["verify"]


@pytest.mark.parametrize(
    "variant", ["Correct horse battery", "correct horse battery ", "correct horse batter"]
)
def test_the_password_is_checked_exactly_as_typed(client, alice, variant):
    # No case folding, trimming or truncation: only the very password opens the account.
    assert alice.password == "correct horse battery"
    assert client.post(TOKENS, headers=_basic("alice", variant)).status_code == 401


def test_delete_all_revokes_every_token_of_the_user_at_once(client, alice, bob):
    """A user could revoke only the token they held: a lost one lived until it expired."""
    others = [alice.new_token(), alice.new_token()]
    assert alice.get(ME).status_code == 200  # its lookup is cached now

    response = alice.delete(TOKENS, query_string={"all": "true"})

    assert response.status_code == 204
    for token in [alice.token, *others]:
        assert client.get(ME, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert bob.get(ME).status_code == 200
    assert alice.delete(TOKENS, query_string={"all": "true"}).status_code == 401


def test_delete_all_takes_only_true_or_false(client, alice):
    assert alice.delete(TOKENS, query_string={"all": "yes"}).status_code == 400
    assert alice.get(ME).status_code == 200
    other = alice.new_token()
    assert alice.delete(TOKENS, query_string={"all": "false"}).status_code == 204
    assert alice.get(ME).status_code == 401
    assert client.get(ME, headers={"Authorization": f"Bearer {other}"}).status_code == 200


def _last_used(app, token: str):
    with app.app_context():
        return db.session.scalar(
            select(ApiToken.last_used_at).where(ApiToken.token_hash == accounts._digest(token))
        )


def test_last_used_is_recorded_coarsely_not_on_every_request(app, alice, monkeypatch):
    """The read path gains no write per request: one per token per interval, on a
    connection of its own (never the request's transaction)."""
    with app.app_context():
        engine = db.engine
    writes: list[object] = []
    reads: list[object] = []

    def watch(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE api_tokens"):
            writes.append(conn)
        elif "FROM todos" in statement:
            reads.append(conn)

    alice.token = alice.new_token()
    assert _last_used(app, alice.token) is None
    event.listen(engine, "before_cursor_execute", watch)
    try:
        for _ in range(20):
            assert alice.get("/api/v1/todos?limit=10").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", watch)

    assert len(writes) == 1
    assert writes[0] not in reads  # not the read's connection, so not its transaction
    first = _last_used(app, alice.token)
    assert first is not None
    monkeypatch.setitem(app.config, "TOKEN_LAST_USED_SECONDS", 0)  # every use counts now
    assert alice.get(ME).status_code == 200
    assert _last_used(app, alice.token) > first
