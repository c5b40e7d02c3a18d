"""The API's shapes: pydantic models for what comes in (and the OpenAPI document), and
fast serializers for what goes out, each following its `...Read` model's fields (and the
tests check every answer against its model).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated, Any, Literal, get_type_hints

from flask import current_app, g, has_request_context, request
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    field_validator,
)

from todoscale.models import Job, TodoRow, User
from todoscale.services import rules
from todoscale.services.lists import ListInfo


def _require_string(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string, e.g. 2026-11-22T08:15:00Z")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_require_string)]
StrictText = Annotated[str, Field(strict=True)]
# What the OpenAPI document says of strings (the checks themselves are the validators and
# rules below): no NUL anywhere, and a title or name holds something besides white space
# (Python's `str.strip` set, spelled out: JSON Schema's `\s` is ECMA-262's, not quite it).
NO_NUL_PATTERN = r"^[^\u0000]*$"
_SPACE = (
    r"\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)
NOT_BLANK_PATTERN = rf"^[^\u0000]*[^\u0000{_SPACE}][^\u0000]*$"
# The stored address is trimmed and lower-cased first, so white space may surround it; the
# rule's `\s` is Python's, spelled out as above (schemathesis found \x1e read otherwise).
EMAIL_PATTERN = (
    rf"^[{_SPACE}]*[^@{_SPACE}\u0000]{{1,64}}@[^@{_SPACE}\u0000]+\.[^@{_SPACE}\u0000]+[{_SPACE}]*$"
)
# Titles and names are limited after trimming (API.md), so trim before counting.
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=rules.TITLE_MAX),
    Field(json_schema_extra={"pattern": NOT_BLANK_PATTERN}),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=rules.NAME_MAX),
    Field(json_schema_extra={"pattern": NOT_BLANK_PATTERN}),
]
ListId = Annotated[str, Field(min_length=1, max_length=64)]
DueAt = Annotated[
    Timestamp | None,
    Field(
        strict=False,
        description=f"RFC 3339 with a zone offset; from {rules.DUE_MIN.isoformat()} up to, "
        f"not including, {rules.DUE_MAX.isoformat()}",
    ),
]


class Schema(BaseModel):
    """Base of every request schema: unknown fields are refused, strings are strings."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # NUL is never meaningful in our text, and PostgreSQL refuses it in queries (a 500).
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class UserCreate(Schema):
    """Registration."""

    username: Annotated[str, Field(pattern=rules.USERNAME_PATTERN)]
    email: Annotated[str, Field(max_length=254, json_schema_extra={"pattern": EMAIL_PATTERN})]
    password: Annotated[
        str,
        Field(
            min_length=rules.PASSWORD_MIN,
            max_length=rules.PASSWORD_MAX,
            description="Not one of the 20,000 most common passwords (compared in lower case)",
        ),
    ]


class ListCreate(Schema):
    """A new list."""

    name: Name


class ListUpdate(ListCreate):
    """A rename."""


class MemberCreate(Schema):
    """Sharing a list."""

    username: Annotated[str, Field(min_length=1, max_length=32)]


class TodoCreate(Schema):
    """A new todo; without `list_id` it goes to the default list."""

    title: Title
    list_id: ListId | None = None
    notes: Annotated[str, Field(max_length=rules.NOTES_MAX)] = ""
    due_at: DueAt = None


def _no_defaults(schema: dict[str, Any]) -> None:
    # A partial update has no defaults: a field left out is left as it is. The Python
    # defaults below only let pydantic tell "left out" (exclude_unset) from "given".
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


class TodoUpdate(Schema):
    """Some fields of a todo; fields left out stay as they are."""

    model_config = ConfigDict(json_schema_extra=_no_defaults)

    title: Title = ""
    notes: Annotated[str, Field(max_length=rules.NOTES_MAX)] = ""
    completed: bool = False
    due_at: DueAt = None
    list_id: ListId = ""


class JobCreate(Schema):
    """An export: every todo of one list, or of every list the caller can see."""

    format: Literal["csv", "json"]
    list_id: ListId | None = None


class UserRead(BaseModel):
    """A user, as anyone who may see it sees it."""

    id: str
    username: str
    email: str
    created_at: datetime
    url: str


class TokenRead(BaseModel):
    """A freshly issued token: shown once."""

    token: str
    expires_at: datetime


class ListRead(BaseModel):
    """A list."""

    id: str
    name: str
    owner: str
    members: list[str]
    is_default: bool
    todo_count: int
    created_at: datetime
    url: str


class ListCollection(BaseModel):
    """Every list the caller can see."""

    items: list[ListRead]


def read_model(name: str, row: type[tuple[Any, ...]], doc: str, **more: Any) -> type[BaseModel]:
    """A response model of a service's row type: its fields, types and order, then `more`."""
    fields: dict[str, Any] = {field: (hint, ...) for field, hint in get_type_hints(row).items()}
    fields.update((field, (hint, ...)) for field, hint in more.items())
    return create_model(name, __doc__=doc, **fields)


# A todo is what services.todos reads of it (models.TodoRow), and where to find it.
TodoRead = read_model("TodoRead", TodoRow, "A todo.", url=str)


class TodoPage(BaseModel):
    """A page of todos, newest first."""

    # TodoRead is made at import (read_model): a model to pydantic, a variable to mypy.
    items: list[TodoRead]  # type: ignore[valid-type]
    next_cursor: str | None


class JobRead(BaseModel):
    """A background job (export or import) and how it is going."""

    id: str
    kind: Literal["export", "import"]
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: int
    error: str | None
    result_url: str | None
    created_at: datetime
    finished_at: datetime | None
    url: str


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str
    title: str
    status: int
    detail: str
    errors: dict[str, list[str]] | None = None


class Health(BaseModel):
    """A health or readiness report."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] | None = None


def base_url() -> str:
    """The API's absolute prefix, from TODOSCALE_PUBLIC_URL; without it, this request's host
    (checked against TODOSCALE_TRUSTED_HOSTS when set), or the default outside a request.

    A client chooses its `Host` header: with PUBLIC_URL set it never reaches a `Location`,
    a `url` field, an event or an email.
    """
    public = current_app.config["PUBLIC_URL"]
    if public or not has_request_context():  # a worker or a broadcast: no request to ask
        return f"{(public or public_url_default()).rstrip('/')}/api/v1"
    base: str | None = g.get("api_base")
    if base is None:
        base = g.api_base = f"{request.scheme}://{request.host}{request.script_root}/api/v1"
    return base


def public_url_default() -> str:
    """`http://localhost:$PORT`, the embedded server's address."""
    return f"http://localhost:{os.environ.get('PORT') or 8000}"


# Timestamps stay datetimes here: the JSON provider (orjson) writes them as RFC 3339 with `Z`.
def _dump(model: type[BaseModel], source: object, **computed: Any) -> dict[str, Any]:
    """`model`'s fields in its order: those given in `computed`, the others read off `source`."""
    return {
        name: computed[name] if name in computed else getattr(source, name)
        for name in model.model_fields
    }


def user_json(user: User) -> dict[str, Any]:
    """The `UserRead` shape of a user."""
    return _dump(UserRead, user, url=f"{base_url()}/users/{user.id}")


def list_json(info: ListInfo) -> dict[str, Any]:
    """The `ListRead` shape of a described list."""
    todo_list = info.todo_list
    return _dump(
        ListRead,
        todo_list,
        owner=todo_list.owner.username,
        members=info.members,
        todo_count=info.todo_count,
        url=f"{base_url()}/lists/{todo_list.id}",
    )


def todo_json(todo: TodoRow, base: str | None = None) -> dict[str, Any]:
    """The `TodoRead` shape of a todo's row (pass `base` when serializing many)."""
    data = todo._asdict()
    data["url"] = f"{base or base_url()}/todos/{todo.id}"
    return data


def job_json(job: Job) -> dict[str, Any]:
    """The `JobRead` shape of a job (`result_url` once an export has its file)."""
    url = f"{base_url()}/jobs/{job.id}"
    done = job.kind == "export" and job.status == "succeeded"
    return _dump(JobRead, job, result_url=f"{url}/result" if done else None, url=url)
