"""services/rules.py: the value rules every adapter shares."""

from __future__ import annotations

import gzip
from importlib import resources

import pytest

from todoscale.exceptions import ValidationError
from todoscale.services import rules


def test_the_bundled_list_holds_at_least_the_ten_thousand_most_common_passwords():
    raw = resources.files("todoscale.services").joinpath(rules.COMMON_PASSWORDS).read_bytes()
    listed = gzip.decompress(raw).decode().splitlines()
    assert len(set(listed)) >= 10_000
    assert listed[:4] == ["123456", "123456789", "qwerty", "password"]  # most common first


@pytest.mark.parametrize(
    "password", ["12345678", "password", "PassWord1", "00000000", "iloveyou", " qwertyuiop "]
)
def test_common_passwords_are_refused_whatever_their_case(password):
    with pytest.raises(ValidationError) as refused:
        rules.check_password(password, "new_password")
    assert refused.value.errors == {
        "new_password": ["is one of the most common passwords; choose one less easy to guess"]
    }


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery",
        "k3v!np0q",
        "密码不是常见的那种",
        "ALLCAPS ONLY",
        "        x",
        "p" * 1024,
    ],
)
def test_a_password_of_any_characters_that_is_not_common_passes(password):
    assert rules.check_password(password) == password  # kept exactly as given (ASVS 6.2.8)
