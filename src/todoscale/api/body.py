"""Reading request bodies and query strings: strict JSON in, domain errors out."""

from __future__ import annotations

from typing import TypeVar

import orjson
import pydantic
from flask import current_app, request

from todoscale.exceptions import BadRequestError, PayloadTooLargeError, ValidationError

Model = TypeVar("Model", bound=pydantic.BaseModel)


def _read_limited(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"The body is larger than {limit} bytes.")
    raw = request.stream.read(limit + 1)  # chunked bodies carry no length: read one byte past
    if len(raw) > limit:
        raise PayloadTooLargeError(f"The body is larger than {limit} bytes.")
    return raw


def json_object() -> dict[str, object]:
    """The request body as a JSON object, or BadRequestError / PayloadTooLargeError.

    orjson is strict where the standard library is lenient: it refuses NaN and Infinity,
    lone surrogates, invalid UTF-8 and nesting deeper than 1,024 (so depth 10,000 is a
    clean 400, not a RecursionError).
    """
    if not request.is_json:
        raise BadRequestError("Send a JSON object with 'Content-Type: application/json'.")
    raw = _read_limited(current_app.config["MAX_JSON_BYTES"])
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"The body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequestError(f"Expected a JSON object, got a JSON {type(data).__name__}.")
    return data


def _field_errors(exc: pydantic.ValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "body"
        message = "is not a known field" if error["type"] == "extra_forbidden" else error["msg"]
        errors.setdefault(field, []).append(message)
    return errors


def parse(schema: type[Model]) -> Model:
    """Validate the JSON body against `schema`: 400 when it is not an object, 422 when invalid."""
    try:
        return schema.model_validate(json_object())
    except pydantic.ValidationError as exc:
        raise ValidationError(_field_errors(exc)) from exc


def int_arg(name: str, *, default: int, minimum: int, maximum: int) -> int:
    """An integer query parameter within [minimum, maximum], or BadRequestError."""
    raw = request.args.get(name)
    if raw is None:
        return default
    # isdigit() alone admits '²' (which int() refuses, a 500) and 4,300+ digits (likewise).
    well_formed = raw.isascii() and raw.isdigit() and len(raw) <= 18
    if not well_formed or not minimum <= int(raw) <= maximum:
        raise BadRequestError(f"'{name}' must be a whole number from {minimum} to {maximum}.")
    return int(raw)


def bool_arg(name: str) -> bool | None:
    """A `true`/`false` query parameter, None when absent, or BadRequestError."""
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise BadRequestError(f"'{name}' must be 'true' or 'false'.")
    return raw == "true"
