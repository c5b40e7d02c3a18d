"""Where a browser may be sent after logging in: only to a path of this site."""

from __future__ import annotations

from urllib.parse import urlsplit


def safe_next(target: str | None) -> str | None:
    """`target` if it is a local path ("/lists/1?x=y"), else None.

    Refused: absolute URLs, scheme-relative `//host`, `/\\host` (browsers read a backslash
    as a slash), anything with control characters or white space a browser might strip.
    """
    if not target or len(target) > 2000:
        return None
    if any(ch == "\\" or ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
