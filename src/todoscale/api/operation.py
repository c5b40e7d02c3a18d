"""`@operation`: a route's contract (summary, schemas, answers, security), declared on its view.

The OpenAPI document is generated from these and the url_map (api.openapi), so a route and
its entry in the document cannot drift apart. The decorator only records: it adds no work to
a request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

View = TypeVar("View", bound=Callable[..., Any])
Security = Literal["bearer", "basic"] | None

ATTRIBUTE = "openapi_operation"  # where the view carries its Operation


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says of one route; its path parameters come from the rule."""

    summary: str
    ok: int
    out: type[BaseModel] | dict[str, Any] | None
    body: type[BaseModel] | dict[str, Any] | None
    fails: tuple[int, ...]
    security: Security
    query: tuple[dict[str, Any], ...]


def operation(
    summary: str,
    *,
    ok: int,
    out: type[BaseModel] | dict[str, Any] | None = None,
    body: type[BaseModel] | dict[str, Any] | None = None,
    fails: str = "",
    security: Security = "bearer",
    query: tuple[dict[str, Any], ...] = (),
) -> Callable[[View], View]:
    """Declare a view's contract: `ok` and its `out` model, the JSON `body` model, the problem
    statuses it `fails` with ("401 404"), its `security` scheme and `query` parameters.

    `out` or `body` may be raw OpenAPI instead of a model: a response object, or the content
    of a body that is not JSON. The answers every write gives (429) and every JSON body
    (400, 413) are added by the document itself.
    """
    declared = Operation(
        summary=summary,
        ok=ok,
        out=out,
        body=body,
        fails=tuple(int(code) for code in fails.split()),
        security=security,
        query=query,
    )

    def declare(view: View) -> View:
        setattr(view, ATTRIBUTE, declared)
        return view

    return declare


def declared(view: Callable[..., Any]) -> Operation | None:
    """The Operation a view was declared with, if any."""
    found: Operation | None = getattr(view, ATTRIBUTE, None)
    return found


def query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional query parameter, as OpenAPI writes it."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }
