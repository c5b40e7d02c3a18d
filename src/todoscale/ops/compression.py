"""Response compression (Flask-Compress): zstd, br or gzip, as the client accepts.

Responses smaller than `COMPRESS_MIN_SIZE` (500 bytes by default) go out as they are:
below that, the framing costs more than compression saves.
"""

from __future__ import annotations

import re

from flask import Flask, Response

from todoscale.web_extensions import compress

# Preference order when a client accepts several (Accept-Encoding q-values still win).
ALGORITHMS = ["zstd", "br", "gzip"]
MIMETYPES = ["text/html", "text/css", "text/javascript", "application/javascript",
             "application/json", "application/problem+json"]  # fmt: skip
_ENCODED_ETAG = re.compile(r'^"(.*):(?:zstd|br|gzip)"$')


def _keep_version_etag(response: Response) -> Response:
    # Flask-Compress appends ":<encoding>" to a strong ETag. Ours names a todo's version and
    # comes back in If-Match, which the service compares with the version: keep it as the
    # view set it (caches keep encodings apart through `Vary: Accept-Encoding`).
    etag = response.headers.get("ETag")
    if etag is not None and "Content-Encoding" in response.headers:
        match = _ENCODED_ETAG.match(etag)
        if match:
            response.headers["ETag"] = f'"{match.group(1)}"'
    return response


def init_app(app: Flask) -> None:
    """Compress large responses; registered first so its hook runs after the app's own."""
    app.config.setdefault("COMPRESS_ALGORITHM", ALGORITHMS)
    app.config.setdefault("COMPRESS_MIMETYPES", MIMETYPES)
    # Streams (file downloads) are left alone: no gzip for streams in Flask-Compress.
    app.config.setdefault("COMPRESS_STREAMS", False)
    app.after_request(_keep_version_etag)
    compress.init_app(app)
