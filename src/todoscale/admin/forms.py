"""The console's forms: shapes and labels; limits come from the modules that enforce them."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField
from wtforms.validators import InputRequired, NumberRange

from todoscale.ops.control import MAX_PROFILE_SECONDS, MAX_PROFILES
from todoscale.ops.leaks import MAX_FRAMES, MAX_SECONDS


class ArmForm(FlaskForm):
    """Profile the next N requests of an endpoint."""

    endpoint = SelectField(_l("Endpoint"), validators=[InputRequired()])
    count = IntegerField(
        _l("Requests"), default=10, validators=[InputRequired(), NumberRange(1, MAX_PROFILES)]
    )
    minutes = IntegerField(
        _l("Give up after (minutes)"),
        default=10,
        validators=[InputRequired(), NumberRange(1, MAX_PROFILE_SECONDS // 60)],
    )


class LeakForm(FlaskForm):
    """Open a memory tracing window on every process."""

    minutes = IntegerField(
        _l("Minutes"), default=10, validators=[InputRequired(), NumberRange(1, MAX_SECONDS // 60)]
    )
    frames = IntegerField(
        _l("Frames per allocation"),
        default=1,
        validators=[InputRequired(), NumberRange(1, MAX_FRAMES)],
    )


class ButtonForm(FlaskForm):
    """A form that is only a button (retry, disarm, snapshot, stop): its CSRF token."""
