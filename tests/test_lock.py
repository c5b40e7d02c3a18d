"""requirements/*.lock: the exact versions a fresh clone installs satisfy pyproject.toml's ranges.

`make run` and `make test` install from the locks, so a range changed in pyproject.toml
without `make lock` would silently not apply; this test fails instead.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, set[Version]]:
    """Every package a lock file pins, with its versions (one per environment marker)."""
    found: dict[str, set[Version]] = {}
    for name, version in PIN.findall((PROJECT_ROOT / "requirements" / lock).read_text()):
        found.setdefault(canonicalize_name(name), set()).add(Version(version))
    return found


def requirements(*, dev: bool) -> list[Requirement]:
    """What pyproject.toml asks for: the package's dependencies, its build, and the dev tools
    (with the bench's extra: `make bench` runs from the dev install)."""
    project = PYPROJECT["project"]
    wanted = [*project["dependencies"], *PYPROJECT["build-system"]["requires"], "pip"]
    if dev:
        wanted += [
            *project["optional-dependencies"]["dev"],
            *project["optional-dependencies"]["bench"],
        ]
    return [Requirement(line) for line in wanted]


@pytest.mark.parametrize(("lock", "dev"), [("run.lock", False), ("dev.lock", True)])
def test_the_lock_pins_every_requirement_within_its_range(lock, dev):
    pinned = pins(lock)
    for requirement in requirements(dev=dev):
        versions = pinned.get(canonicalize_name(requirement.name))
        assert versions, f"{requirement.name} is not in {lock}: run `make lock`"
        outside = [v for v in versions if not requirement.specifier.contains(v, prereleases=True)]
        assert not outside, f"{lock} pins {requirement.name} {outside}: run `make lock`"


def test_the_dev_lock_agrees_with_the_run_lock():
    run, dev = pins("run.lock"), pins("dev.lock")
    assert {name: run[name] for name in run} == {name: dev[name] for name in run}
