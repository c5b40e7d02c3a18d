"""auth/redirects.py: only local paths are followed after login."""

from __future__ import annotations

import pytest

from todoscale.auth.redirects import safe_next


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/lists/abc",
        "/lists/abc?cursor=xyz&before=",
        "/profile#language",
    ],
)
def test_local_paths_are_kept(target):
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "https://evil.example",
        "HTTPS://evil.example",
        "http:evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,x",
        "evil.example/path",
        " /lists",
        "/\t/evil",
        "/\n/evil",
        "/\x00",
        "/" + "a" * 2001,
        "/%0a",
    ],
)
def test_everything_else_is_refused(target):
    expected = "/%0a" if target == "/%0a" else None  # percent-encoded text is a harmless path
    assert safe_next(target) == expected
