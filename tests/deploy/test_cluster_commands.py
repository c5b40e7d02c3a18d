"""`todoscale cluster`: options, the generated supervisord configuration, the idle cases."""

from __future__ import annotations

import configparser
import sys

from click.testing import CliRunner

from todoscale.deploy import cluster as local
from todoscale.deploy.cluster_commands import group


def test_tls_needs_a_certificate_and_a_key(tmp_path, monkeypatch):
    monkeypatch.setenv("TODOSCALE_INSTANCE_PATH", str(tmp_path))

    result = CliRunner().invoke(group, ["up", "--tls-port", "8443"])

    assert result.exit_code == 2
    assert "--tls-port needs --cert and --key" in result.output
    assert not (tmp_path / "cluster").exists(), "nothing started, nothing written"


def test_status_and_down_say_when_no_cluster_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TODOSCALE_INSTANCE_PATH", str(tmp_path))

    for command in ("status", "down"):
        result = CliRunner().invoke(group, [command])
        assert result.exit_code == 0
        assert "No cluster is running" in result.output


def test_every_program_restarts_and_stops_with_its_whole_group(tmp_path):
    plan = local.Plan(instance_path=tmp_path, port=9000, instances=3, server="granian")
    parser = configparser.RawConfigParser()
    parser.read_string(local.supervisord_config(plan))

    programs = [name for name in parser.sections() if name.startswith("program:")]
    assert programs == ["program:nginx", "program:app1", "program:app2", "program:app3"]
    for name in programs:
        section = parser[name]
        assert section["autorestart"] == "true"
        assert section["stopasgroup"] == section["killasgroup"] == "true"
        assert section["stdout_logfile"].startswith(str(tmp_path / "cluster" / "logs"))
    app3 = parser["program:app3"]
    assert app3["command"] == f"{sys.executable} -m todoscale.cli serve --server granian"
    assert 'TODOSCALE_BIND="127.0.0.1:9003"' in app3["environment"]
    assert 'TODOSCALE_INSTANCE_ID="app3"' in app3["environment"]
    assert 'TODOSCALE_TRUSTED_PROXIES="1"' in app3["environment"]
    assert parser["group:app"]["programs"] == "app1,app2,app3"
    assert parser["supervisord"]["pidfile"] == str(tmp_path / "cluster" / "supervisord.pid")
