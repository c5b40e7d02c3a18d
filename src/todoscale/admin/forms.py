"""The console's forms: shapes and labels; limits come from the modules that enforce them."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField
from wtforms.validators import InputRequired, NumberRange

from todoscale.ops.control import MAX_PROFILE_SECONDS, MAX_PROFILES
from todoscale.ops.leaks import MAX_FRAMES, MAX_SECONDS

DIGITS = 9  # more than any limit below has


class BoundedIntegerField(IntegerField):
    """An integer of at most DIGITS digits. Longer input is refused before it becomes an int:
    wtforms' NumberRange calls math.isnan, which raises OverflowError (a 500) on an int too
    large for a float."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Refuse over-long input as not an integer; otherwise IntegerField's parsing."""
        if valuelist and len(str(valuelist[0]).strip()) > DIGITS:
            raise ValueError(
                _l("Enter a whole number of at most %(digits)d digits.", digits=DIGITS)
            )
        super().process_formdata(valuelist)


class ArmForm(FlaskForm):
    """Profile the next N requests of an endpoint."""

    endpoint = SelectField(_l("Endpoint"), validators=[InputRequired()])
    count = BoundedIntegerField(
        _l("Requests"), default=10, validators=[InputRequired(), NumberRange(1, MAX_PROFILES)]
    )
    minutes = BoundedIntegerField(
        _l("Give up after (minutes)"),
        default=10,
        validators=[InputRequired(), NumberRange(1, MAX_PROFILE_SECONDS // 60)],
    )


class LeakForm(FlaskForm):
    """Open a memory tracing window on every process."""

    minutes = BoundedIntegerField(
        _l("Minutes"), default=10, validators=[InputRequired(), NumberRange(1, MAX_SECONDS // 60)]
    )
    frames = BoundedIntegerField(
        _l("Frames per allocation"),
        default=1,
        validators=[InputRequired(), NumberRange(1, MAX_FRAMES)],
    )


class ButtonForm(FlaskForm):
    """A form that is only a button (retry, disarm, snapshot, stop): its CSRF token."""
