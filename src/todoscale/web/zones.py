"""Time zones in the pages: their names in the reader's language, the profile's choices, and
moving a time between a zone's wall clock and UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytz
from babel.dates import get_timezone_location
from flask_babel import get_locale, get_timezone
from flask_babel import lazy_gettext as _l
from wtforms.fields.choices import SelectChoice

# The zones the profile offers: the tz database's common ones in the geographic areas
# (each named by Babel as a place, e.g. "China (Shanghai) Time"), and UTC itself.
_AREAS = {
    "Africa": _l("Africa"),
    "America": _l("America"),
    "Antarctica": _l("Antarctica"),
    "Arctic": _l("Arctic"),
    "Asia": _l("Asia"),
    "Atlantic": _l("Atlantic Ocean"),
    "Australia": _l("Australia"),
    "Europe": _l("Europe"),
    "Indian": _l("Indian Ocean"),
    "Pacific": _l("Pacific Ocean"),
}
UTC_NAME = "UTC"
OFFERED = frozenset(zone for zone in pytz.common_timezones if zone.partition("/")[0] in _AREAS) | {
    UTC_NAME
}
# What a datetime-local input holds: a wall-clock time, no zone.
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


@lru_cache(maxsize=4096)
def _label(zone: str, locale: str) -> str:
    return str(get_timezone_location(pytz.timezone(zone), locale=locale))


def zone_label(zone: str) -> str:
    """A time zone's name in the reader's language, as Babel has it: "China (Shanghai) Time"."""
    if zone == UTC_NAME:
        return str(_l("Coordinated Universal Time"))
    return _label(zone, str(get_locale()))


def zone_choices(browser: str) -> list[SelectChoice]:
    """The profile's time zones, by area, named in the reader's language; first the choice of
    none (following the browser), labelled `browser`, and UTC."""
    locale = str(get_locale())
    choices = [SelectChoice("", browser), SelectChoice(UTC_NAME, zone_label(UTC_NAME))]
    for area, title in _AREAS.items():
        zones = (zone for zone in OFFERED if zone.partition("/")[0] == area)
        group = (SelectChoice(zone, _label(zone, locale), optgroup=str(title)) for zone in zones)
        choices += sorted(group, key=lambda choice: choice.label)
    return choices


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or str(get_timezone()))
    except (ZoneInfoNotFoundError, ValueError):  # a name pytz knows and this system does not
        return ZoneInfo(UTC_NAME)


def to_wall_clock(moment: datetime, zone: str | None = None) -> datetime:
    """`moment` as a clock on the wall in `zone` reads it (the page's zone by default), naive.

    A moment the zone cannot show (past the last day a date can hold) is shown in UTC.
    """
    try:
        return moment.astimezone(_zone(zone)).replace(tzinfo=None)
    except OverflowError:
        return moment.astimezone(UTC).replace(tzinfo=None)


def from_wall_clock(local: datetime, zone: str) -> datetime:
    """The moment a wall-clock time in `zone` names (in a DST gap or fold: the earlier offset).

    Not converted here: the rules convert to UTC, and refuse what is past datetime's range.
    """
    return local.replace(tzinfo=_zone(zone))
