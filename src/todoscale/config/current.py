"""The settings of the app in whose context a call runs: what a service uses for a setting its
caller did not pass.

A service takes each setting it needs as a parameter (a lease, a lifetime, a cost), so it can
be called with no app at all; left out, as the app's views, tasks and commands leave it, the
parameter is the running app's setting, read here at the moment of the call (a changed
`app.config` counts at once). This is the one place below the adapters that asks Flask for
the app; `todoscale.config` itself stays free of Flask (the servers' launchers import it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app


def app_settings() -> Mapping[str, Any]:
    """The running app's settings, by `Settings`' field names (its `config`)."""
    return current_app.config
