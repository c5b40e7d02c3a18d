"""The README stays true: its quick start and its configuration table match the code."""

from __future__ import annotations

import re

from tests.conftest import PROJECT_ROOT
from todoscale.config import SETTINGS
from todoscale.config.table import with_configuration_table

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def test_quick_start_shows_the_two_commands():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^make \w+", quick_start, flags=re.MULTILINE) == ["make run", "make test"]


def test_every_setting_is_documented_with_its_default():
    for setting in SETTINGS:
        row = re.search(rf"^\| `{setting.env}` \| (.*?) \|", README, flags=re.MULTILINE)
        assert row, f"{setting.env} is missing from the README's configuration table"
        assert row.group(1) == setting.default, f"{setting.env}: README says {row.group(1)}"


def test_no_undocumented_variable_is_named_in_the_readme():
    known = {setting.env for setting in SETTINGS}
    named = set(re.findall(r"`(TODOSCALE_[A-Z0-9_]+)`", README))
    assert named <= known | {
        "TODOSCALE_REQUIRE_SERVICES",
        "TODOSCALE_TEST_DATABASE_URL",
        "TODOSCALE_TEST_REDIS_URL",
    }


def test_the_configuration_table_is_the_one_the_declaration_renders():
    # `make config-table` writes it; a setting added, changed or dropped fails here until then.
    assert with_configuration_table(README) == README, "run `make config-table`"
