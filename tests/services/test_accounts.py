"""services.accounts: registration, passwords and tokens, called directly."""

from __future__ import annotations

from datetime import timedelta

import argon2
import pytest
from flask import current_app, has_app_context
from sqlalchemy import func, select, update

from tests.conftest import Recorder
from todoscale.exceptions import AuthenticationError, ConflictError, ValidationError
from todoscale.extensions import db
from todoscale.models import ApiToken, Membership, TodoList, User, utcnow
from todoscale.services import accounts
from todoscale.signals import tokens_revoked, user_registered

PASSWORD = "long enough pw"


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_register_creates_the_user_its_inbox_and_owner_membership(ctx):
    user = accounts.register_user("carol", "Carol@Example.COM ", PASSWORD)

    assert user.email == "carol@example.com"
    assert user.is_admin is False
    inbox = db.session.scalars(select(TodoList).where(TodoList.owner_id == user.id)).one()
    assert (inbox.name, inbox.is_default) == ("Inbox", True)
    membership = db.session.get(Membership, (inbox.id, user.id))
    assert membership is not None
    assert membership.role == "owner"


def test_password_is_stored_only_as_an_argon2id_hash(ctx):
    user = accounts.register_user("carol", "carol@example.com", PASSWORD)

    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_register_announces_the_user_after_commit(ctx):
    recorder = Recorder()
    seen_committed = []

    def committed(sender, user):
        with db.engine.connect() as other:  # another connection sees only committed rows
            seen_committed.append(
                other.scalar(select(func.count()).select_from(User).where(User.id == user.id))
            )

    with user_registered.connected_to(recorder), user_registered.connected_to(committed):
        user = accounts.register_user("carol", "carol@example.com", PASSWORD)

    assert recorder.calls == [(accounts.register_user, {"user": user})]
    assert seen_committed == [1]


@pytest.mark.parametrize(
    ("username", "email", "field"),
    [("CAROL", "other@example.com", "username"), ("other", "CAROL@example.com", "email")],
)
def test_taken_username_or_email_is_a_conflict_and_announces_nothing(ctx, username, email, field):
    accounts.register_user("carol", "carol@example.com", PASSWORD)
    recorder = Recorder()

    with user_registered.connected_to(recorder), pytest.raises(ConflictError, match=field):
        accounts.register_user(username, email, PASSWORD)

    assert recorder.calls == []
    assert _count(User) == 1
    assert _count(TodoList) == 1


def test_invalid_registration_names_every_field_at_fault(ctx):
    with pytest.raises(ValidationError) as caught:
        accounts.register_user("x", "nope", "short")

    assert set(caught.value.errors) == {"username", "email", "password"}
    assert _count(User) == 0


def test_authenticate_returns_the_user_for_the_right_password(ctx):
    user = accounts.register_user("carol", "carol@example.com", PASSWORD)

    assert accounts.authenticate("Carol", PASSWORD).id == user.id


@pytest.mark.parametrize(
    ("username", "password"),
    [("carol", "wrong password"), ("nobody", PASSWORD), ("c" * 40, PASSWORD), ("carol", "")],
)
def test_authenticate_refuses_wrong_credentials(ctx, username, password):
    accounts.register_user("carol", "carol@example.com", PASSWORD)

    with pytest.raises(AuthenticationError):
        accounts.authenticate(username, password)


def test_authenticate_rehashes_when_the_parameters_change(ctx, monkeypatch):
    user = accounts.register_user("carol", "carol@example.com", PASSWORD)
    old_hash = user.password_hash
    time_cost = current_app.config["ARGON2_TIME_COST"] + 1
    monkeypatch.setitem(current_app.config, "ARGON2_TIME_COST", time_cost)

    accounts.authenticate("carol", PASSWORD)

    db.session.expire_all()
    new_hash = db.session.get(User, user.id).password_hash
    assert new_hash != old_hash
    assert f"t={time_cost}" in new_hash
    assert accounts.authenticate("carol", PASSWORD).id == user.id


def test_issued_token_finds_its_user_until_it_expires(ctx, monkeypatch):
    user = accounts.register_user("carol", "carol@example.com", PASSWORD)
    token, expires_at = accounts.issue_token(user)
    ttl = timedelta(seconds=current_app.config["TOKEN_TTL_SECONDS"])

    assert utcnow() < expires_at <= utcnow() + ttl
    assert accounts.user_for_token(token).id == user.id
    stored = db.session.scalars(select(ApiToken)).one()
    assert token not in stored.token_hash
    monkeypatch.setattr(accounts, "utcnow", lambda: expires_at)
    assert accounts.user_for_token(token) is None


@pytest.mark.parametrize("token", ["", "unknown", "x" * 300, "\udcff"])
def test_unknown_tokens_find_nobody(ctx, token):
    accounts.issue_token(accounts.register_user("carol", "carol@example.com", PASSWORD))

    assert accounts.user_for_token(token) is None


def test_revoked_token_finds_nobody_and_is_announced(ctx):
    user = accounts.register_user("carol", "carol@example.com", PASSWORD)
    token, _ = accounts.issue_token(user)
    other, _ = accounts.issue_token(user)
    recorder = Recorder()

    with tokens_revoked.connected_to(recorder):
        accounts.revoke_token(token)
        accounts.revoke_token("never issued")

    assert accounts.user_for_token(token) is None
    assert accounts.user_for_token(other).id == user.id
    assert recorder.calls == [(accounts.revoke_token, {"user_id": user.id})]


def test_purge_deletes_only_expired_tokens(ctx):
    user = accounts.register_user("carol", "carol@example.com", PASSWORD)
    accounts.issue_token(user)
    accounts.issue_token(user)
    db.session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    live, _ = accounts.issue_token(user)

    assert accounts.purge_expired_tokens() == 2
    assert accounts.user_for_token(live).id == user.id
    assert _count(ApiToken) == 1


def test_find_user_ignores_case(ctx):
    user = accounts.register_user("Carol", "carol@example.com", PASSWORD)

    assert accounts.find_user("cAROL").id == user.id
    assert accounts.find_user("carl") is None


def test_unknown_users_are_verified_against_a_hash_of_the_configured_cost(app, ctx):
    # The stand-in costs what a real hash costs: the parameters set argon2's work.
    real = accounts.hash_password("a real password")
    config = app.config
    stand_in = accounts._stand_in_hash(config["ARGON2_TIME_COST"], config["ARGON2_MEMORY_KIB"])
    assert argon2.extract_parameters(stand_in) == argon2.extract_parameters(real)


def test_a_password_hashes_at_the_cost_it_is_given_without_an_app():
    assert not has_app_context()

    hashed = accounts.hash_password(PASSWORD, accounts.PasswordCost(time_cost=1, memory_kib=64))

    parameters = argon2.extract_parameters(hashed)
    assert (parameters.time_cost, parameters.memory_cost) == (1, 64)
    assert argon2.PasswordHasher().verify(hashed, PASSWORD)
