"""services.tokens: a user's tokens listed, revoked one by one or all at once, called directly."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.conftest import Recorder
from todoscale.exceptions import NotFoundError
from todoscale.extensions import db
from todoscale.models import ApiToken, utcnow
from todoscale.services import accounts, tokens
from todoscale.signals import tokens_revoked

PASSWORD = "long enough pw"


@pytest.fixture
def people(ctx):
    """Carol with three tokens (one expired) and Dan with one."""
    carol = accounts.register_user("carol", "carol@example.com", PASSWORD)
    dan = accounts.register_user("dan", "dan@example.com", PASSWORD)
    expired, _ = accounts.issue_token(carol)
    db.session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    return {
        "carol": carol,
        "dan": dan,
        "expired": expired,
        "carol_tokens": [accounts.issue_token(carol)[0] for _ in range(2)],
        "dan_token": accounts.issue_token(dan)[0],
    }


def test_a_users_live_tokens_are_listed_newest_first(people):
    listed = tokens.list_tokens(people["carol"])
    assert len(listed) == 2
    assert listed[0].created_at >= listed[1].created_at
    assert {token.user_id for token in listed} == {people["carol"].id}
    assert all(token.last_used_at is None for token in listed)


def test_one_token_is_revoked_by_id_by_its_owner_only(people):
    carol, dan = people["carol"], people["dan"]
    newest = tokens.list_tokens(carol)[0]
    recorder = Recorder()
    with tokens_revoked.connected_to(recorder):
        with pytest.raises(NotFoundError):
            tokens.revoke_user_token(dan, newest.id)
        tokens.revoke_user_token(carol, newest.id)
        with pytest.raises(NotFoundError):
            tokens.revoke_user_token(carol, newest.id)
    assert recorder.calls == [(tokens.revoke_user_token, {"user_id": carol.id})]
    assert [accounts.user_for_token(t) is not None for t in people["carol_tokens"]].count(True) == 1


def test_every_token_is_revoked_at_once(people):
    carol = people["carol"]
    assert accounts.user_for_token(people["carol_tokens"][0]) is not None  # cached now
    recorder = Recorder()
    with tokens_revoked.connected_to(recorder):
        tokens.revoke_user_tokens(carol)
    assert recorder.calls == [(tokens.revoke_user_tokens, {"user_id": carol.id})]
    assert all(accounts.user_for_token(t) is None for t in people["carol_tokens"])
    assert tokens.list_tokens(carol) == []
    assert accounts.user_for_token(people["dan_token"]).id == people["dan"].id


def test_a_use_noted_within_the_interval_writes_nothing_and_needs_no_app():
    noted = {"t1": time.monotonic()}

    # Outside any app: reaching for the database would raise, so nothing was written.
    tokens.note_token_used("t1", every=300.0, noted=noted)

    assert list(noted) == ["t1"]


def test_a_use_past_the_interval_is_written_once(people):
    token_id = accounts.authenticate_token(people["dan_token"])[1]
    noted: dict[str, float] = {}

    tokens.note_token_used(token_id, every=300.0, noted=noted)
    first = _last_used(token_id)
    tokens.note_token_used(token_id, every=300.0, noted=noted)  # noted: no second write

    assert first is not None and _last_used(token_id) == first
    assert set(noted) == {token_id}


def _last_used(token_id: str):
    db.session.expire_all()
    return db.session.get(ApiToken, token_id).last_used_at
