"""Versioned static URLs: `url_for('static', filename='app.css')` gives `app.<hash>.css`.

The hash is the first 12 hex digits of the file's SHA-256, so a changed file gets a new URL
and an unchanged one can be cached for good: by browsers, by nginx (which serves these names
itself, see deploy/nginx/todoscale.conf) and by a CDN.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from typing import Any

from flask import Flask, Response, current_app
from werkzeug.security import safe_join

_HASHED = re.compile(r"(?P<stem>.+)\.(?P<digest>[0-9a-f]{12})(?P<suffix>\.[A-Za-z0-9]+)")
FOREVER = 365 * 24 * 3600


@functools.lru_cache(maxsize=1024)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    # Keyed on mtime and size too: an edited file is hashed again, an unchanged one never.
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()[:12]


def hashed_name(folder: str, filename: str) -> str:
    """`filename` with its content hash before the extension; unchanged if it is not a file
    inside `folder`.

    The name is joined safely first (werkzeug's `safe_join`: no `..`, no absolute path), so
    a request can never make this read a file outside the static folder.
    """
    path = safe_join(folder, filename)
    stem, dot, suffix = filename.rpartition(".")
    if path is None or not dot or "/" in suffix:
        return filename
    try:
        stat = os.stat(path)
    except OSError:
        return filename
    if not os.path.isfile(path):
        return filename
    return f"{stem}.{_digest(path, stat.st_mtime_ns, stat.st_size)}.{suffix}"


def _version_urls(endpoint: str, values: dict[str, Any]) -> None:
    if endpoint == "static" and "filename" in values and current_app.static_folder:
        values["filename"] = hashed_name(current_app.static_folder, values["filename"])


def _serve(filename: str) -> Response:
    """Serve a static file by its plain or hashed name; a hashed name is cached for a year."""
    app = current_app
    match = _HASHED.fullmatch(filename)
    if match and app.static_folder:
        plain = match["stem"] + match["suffix"]
        if hashed_name(app.static_folder, plain) == filename:
            response = app.send_static_file(plain)
            response.cache_control.no_cache = None
            response.cache_control.public = True
            response.cache_control.max_age = FOREVER
            response.cache_control.immutable = True
            return response
    return app.send_static_file(filename)


def init_app(app: Flask) -> None:
    """Version every static URL the app builds, and serve the versioned names."""
    app.url_defaults(_version_urls)
    app.view_functions["static"] = _serve
