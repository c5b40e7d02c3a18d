"""The domain exception tree. A leaf: no Flask, nothing of ours.

Services raise these; `todoscale.errors` turns them into responses in one place.
"""

from __future__ import annotations


class TodoscaleError(Exception):
    """Base of every domain error; `status` is the HTTP status it maps to."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class BadRequestError(TodoscaleError):
    """The request is not what the endpoint reads (not JSON, wrong shape, bad cursor)."""


class ValidationError(TodoscaleError):
    """The request is well formed but its values break the rules; `errors` says which."""

    status = 422
    title = "Validation failed"

    def __init__(self, errors: dict[str, list[str]], detail: str | None = None) -> None:
        super().__init__(detail or "Some fields are invalid; see 'errors'.")
        self.errors = errors


class AuthenticationError(TodoscaleError):
    """No valid credentials came with the request; `scheme` is the one to offer the client."""

    status = 401
    title = "Authentication required"

    def __init__(self, detail: str | None = None, *, scheme: str = "Bearer") -> None:
        super().__init__(detail)
        self.scheme = scheme


class AccessDeniedError(TodoscaleError):
    """The actor may see the resource but not change it."""

    status = 403
    title = "Forbidden"


class NotFoundError(TodoscaleError):
    """The resource does not exist, or the actor may not see it (the two look the same)."""

    status = 404
    title = "Not found"


class ConflictError(TodoscaleError):
    """The change conflicts with the current state (a taken name, a duplicate member)."""

    status = 409
    title = "Conflict"


class PreconditionFailedError(TodoscaleError):
    """`If-Match` named a version that is no longer current: the write would lose an update."""

    status = 412
    title = "Precondition failed"


class PayloadTooLargeError(TodoscaleError):
    """The request body is larger than the configured maximum."""

    status = 413
    title = "Payload too large"
