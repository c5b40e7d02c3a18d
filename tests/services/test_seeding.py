"""services.seeding: the reference workload, refused in production before anything is read."""

from __future__ import annotations

import pytest

from todoscale.exceptions import AccessDeniedError
from todoscale.services.seeding import seed


def test_seeding_is_refused_in_production_without_an_app_or_a_database():
    with pytest.raises(AccessDeniedError, match="refuses to run in production"):
        seed(users=1, todos=1, password="known to all", env_name="production")
