"""The forms of the pages: field shapes and labels only; the rules are the services'."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import PasswordField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields import DateField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import EqualTo


class DueDateField(DateField):
    """An optional date (`YYYY-MM-DD`, what `<input type="date">` sends)."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Parse the date; an empty field means no due date."""
        raw = (valuelist[0] if valuelist else "").strip()
        if not raw:
            self.data = None
            return
        try:
            self.data = date.fromisoformat(raw)
        except ValueError as exc:
            self.data = None
            raise ValueError(_l("Enter a date like 2026-12-31.")) from exc

    def as_datetime(self) -> datetime | None:
        """The due date as the start of that day, UTC (the time the API stores)."""
        return datetime.combine(self.data, time(), tzinfo=UTC) if self.data else None


class TodoForm(FlaskForm):
    """Adding or editing a todo."""

    title = StringField(_l("Title"))
    notes = TextAreaField(_l("Notes"))
    due_at = DueDateField(_l("Due date"))


class ListForm(FlaskForm):
    """Naming a list."""

    name = StringField(_l("List name"))


class ShareForm(FlaskForm):
    """Sharing a list with someone."""

    username = StringField(_l("Username"))


class LanguageForm(FlaskForm):
    """The language of the pages."""

    # Each language is named in itself, so anyone can find theirs.
    locale = SelectField(
        _l("Language"),
        choices=[
            SelectChoice("", _l("As my browser asks")),
            SelectChoice("en", "English", render_kw={"lang": "en"}),
            SelectChoice("zh_Hans", "简体中文", render_kw={"lang": "zh-Hans"}),
        ],
    )


class PasswordForm(FlaskForm):
    """A new password, confirmed, and the current one."""

    current_password = PasswordField(
        _l("Current password"), render_kw={"autocomplete": "current-password"}
    )
    new_password = PasswordField(_l("New password"), render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(
        _l("Repeat the new password"),
        render_kw={"autocomplete": "new-password"},
        validators=[EqualTo("new_password", message=_l("The two new passwords differ."))],
    )


class ExportForm(FlaskForm):
    """Exporting a list (or every list) to a file."""

    format = RadioField(
        _l("File format"),
        choices=[SelectChoice("csv", _l("CSV (spreadsheets)")), SelectChoice("json", "JSON")],
        default="csv",
    )


class ImportForm(FlaskForm):
    """Importing an export file into a list."""

    file = FileField(
        _l("Export file (CSV or JSON)"),
        render_kw={"accept": ".csv,.json,text/csv,application/json"},
    )
