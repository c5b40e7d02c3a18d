"""A Flask JSON provider on orjson: several times faster than the standard library."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response
from flask.json.provider import JSONProvider

OPTIONS = orjson.OPT_UTC_Z  # aware UTC datetimes as 2026-11-22T08:15:00.123456Z


class OrjsonProvider(JSONProvider):
    """Serialize responses with orjson (UTF-8, no NaN, datetimes as RFC 3339)."""

    mimetype = "application/json"

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=str, option=OPTIONS).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        return Response(orjson.dumps(obj, default=str, option=OPTIONS), mimetype=self.mimetype)
