"""The forms of the pages: field shapes and labels only; the rules are the services'."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, PasswordField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields import DateTimeLocalField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import EqualTo

from todoscale.web.zones import LOCAL_FORMAT, from_wall_clock


class DueTimeField(DateTimeLocalField):
    """An optional wall-clock date and time (`<input type="datetime-local">`: 2026-12-31T17:00),
    in the time zone the form was shown in; a date alone means the start of that day."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, format=LOCAL_FORMAT, **kwargs)

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Parse the wall-clock time; an empty field means no due time."""
        raw = (valuelist[0] if valuelist else "").strip()
        self.data = None
        if not raw:
            return
        try:
            self.data = datetime.fromisoformat(raw).replace(microsecond=0)
        except ValueError as exc:
            raise ValueError(_l("Enter a date and time like 2026-12-31T17:00.")) from exc

    def as_datetime(self, zone: str) -> datetime | None:
        """The moment the field names in `zone`, unless it gave an offset of its own."""
        if self.data is None or self.data.tzinfo is not None:
            return self.data
        return from_wall_clock(self.data, zone)


class TodoForm(FlaskForm):
    """Adding or editing a todo. `time_zone` is the zone the form showed its times in, so they
    are read back in it; `version` is the version it showed, for the edit's stale check."""

    title = StringField(_l("Title"))
    notes = TextAreaField(_l("Notes"))
    due_at = DueTimeField(_l("Due"))
    time_zone = HiddenField()
    version = HiddenField()


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


class TimeZoneForm(FlaskForm):
    """The time zone the pages show and take times in (its choices: `web.zones.zone_choices`;
    the service checks the name)."""

    time_zone = SelectField(_l("Time zone"), validate_choice=False)


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
