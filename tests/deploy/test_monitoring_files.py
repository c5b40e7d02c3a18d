"""deploy/prometheus and deploy/grafana name only metrics the app really exports."""

from __future__ import annotations

import json
import re
import subprocess

import yaml

from tests.conftest import PROJECT_ROOT
from tests.deploy.helpers import require
from todoscale.ops import groups

DEPLOY = PROJECT_ROOT / "deploy"
_NAME = re.compile(r"\btodoscale_[a-z_]+")
_SUFFIXES = ("_bucket", "_count", "_sum")


def _exported(client) -> set[str]:
    text = client.get("/metrics").data.decode()
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    names |= {line.split("{")[0].split()[0] for line in text.splitlines() if line[:1].isalpha()}
    # Counted only when a worker has exited (the archive of a multiprocess group).
    names.add(groups.EXITS_METRIC + "_total")
    return names


def _used(text: str) -> set[str]:
    found = set()
    for name in _NAME.findall(text):
        for suffix in _SUFFIXES:
            name = name.removesuffix(suffix)
        found.add(name)
    return found


def _known(used: set[str], exported: set[str]) -> set[str]:
    """The names in `used` that match no exported family or sample."""
    bases = {name.removesuffix(s) for name in exported for s in (*_SUFFIXES, "")}
    return {name for name in used if name not in exported and name not in bases}


def test_alert_rules_name_only_exported_metrics(client, alice):
    alice.get("/api/v1/todos")  # samples for the labelled families
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(exprs) >= 5

    unknown = _known(_used("\n".join(exprs)), _exported(client))

    assert not unknown, f"alerts name metrics the app does not export: {unknown}"


def test_the_dashboard_names_only_exported_metrics(client, alice):
    alice.get("/api/v1/todos")
    board = json.loads((DEPLOY / "grafana" / "todoscale.json").read_text())
    exprs = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    assert len(exprs) >= 10

    unknown = _known(_used("\n".join(exprs)), _exported(client))

    assert not unknown, f"the dashboard names metrics the app does not export: {unknown}"


def test_promtool_accepts_the_rules():
    promtool = require("promtool")  # Debian's prometheus package; .ci/run installs it
    done = subprocess.run(
        [promtool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
