"""What every page needs: the logged-in user, and service errors shown on a form.

`login_required` and `current_user` are kept by hand rather than Flask-Login's because the
server-side session (`auth.sessions`) already loads the user with its row and revokes it by
deleting the row, so Flask-Login would add only a second identity key in that session
(`_user_id`), a user loader, a `UserMixin` on the model and a remember cookie and address
hash to turn off, and an after-request hook on every request (the API's hot reads too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from typing import ParamSpec

from flask import g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from todoscale.models import User

P = ParamSpec("P")


def current_user() -> User:
    """The logged-in user (inside a `login_required` view)."""
    user: User = g.user
    return user


def login_required(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """Run `view` for a logged-in browser; send anyone else to the login page."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        if g.get("user") is None:
            # Only a page can be come back to; a form's POST cannot be replayed by a GET.
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("auth.login", next=target))
        return view(*args, **kwargs)

    return wrapper


def show_errors(
    form: FlaskForm, errors: Mapping[str, Sequence[str]], fields: Mapping[str, str] | None = None
) -> None:
    """Put a service's field errors next to the form's fields (`fields` renames them)."""
    for name, messages in errors.items():
        form[(fields or {}).get(name, name)].errors = list(messages)
