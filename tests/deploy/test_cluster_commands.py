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
    parser.read_string(local.supervisord_config(plan, nginx="nginx"))

    programs = [name for name in parser.sections() if name.startswith("program:")]
    assert programs == [
        "program:redis",
        "program:nginx",
        *(f"program:app{n}" for n in (1, 2, 3)),
        *(f"program:socketio{n}" for n in (1, 2, 3)),
        "program:worker",
        "program:beat",
    ]
    for name in programs:
        section = parser[name]
        assert section["autorestart"] == "true"
        assert section["killasgroup"] == "true"
        # The Celery worker stops its pool itself; the signal goes to it alone.
        assert section["stopasgroup"] == ("false" if name == "program:worker" else "true")
        assert section["stdout_logfile"].startswith(str(tmp_path / "cluster" / "logs"))
    app3 = parser["program:app3"]
    assert app3["command"] == f"{sys.executable} -m todoscale.cli serve --server granian"
    assert 'TODOSCALE_BIND="127.0.0.1:9003"' in app3["environment"]
    assert 'TODOSCALE_INSTANCE_ID="app3"' in app3["environment"]
    assert 'TODOSCALE_TRUSTED_PROXIES="1"' in app3["environment"]
    assert parser["group:app"]["programs"] == "app1,app2,app3"
    assert parser["supervisord"]["pidfile"] == str(tmp_path / "cluster" / "supervisord.pid")


def test_socketio_services_worker_and_beat_share_one_redis(tmp_path):
    plan = local.Plan(instance_path=tmp_path, port=9000, instances=2, socketio_port=9100)
    parser = configparser.RawConfigParser()
    parser.read_string(local.supervisord_config(plan, nginx="nginx"))

    socketio2 = parser["program:socketio2"]
    assert socketio2["command"] == f"{sys.executable} -m todoscale.cli serve --socketio"
    assert 'TODOSCALE_BIND="127.0.0.1:9101"' in socketio2["environment"]
    assert 'TODOSCALE_INSTANCE_ID="socketio2"' in socketio2["environment"]
    assert parser["program:worker"]["command"].endswith(
        "-m celery -A todoscale.worker worker --loglevel INFO --without-gossip --without-mingle"
    )
    beat = parser["program:beat"]["command"]
    assert f"beat --loglevel INFO --schedule {tmp_path / 'cluster' / 'celerybeat-schedule'}" in beat
    # No TODOSCALE_REDIS_URL: the cluster's own Redis, on loopback, keeping nothing on disk.
    assert plan.redis == "redis://127.0.0.1:9200/0"
    assert "--bind 127.0.0.1 --port 9200" in parser["program:redis"]["command"]
    local.write_files(plan)
    site = (plan.folder / "todoscale.conf").read_text()
    upstream = site.split("upstream todoscale_socketio {", 1)[1].split("}", 1)[0]
    assert upstream.split() == [
        "ip_hash;",
        "server",
        "127.0.0.1:9100;",
        "server",
        "127.0.0.1:9101;",
    ]


def test_a_given_redis_replaces_the_clusters_own(tmp_path):
    url = "redis://127.0.0.1:6379/3"
    plan = local.Plan(instance_path=tmp_path, port=9000, env={"TODOSCALE_REDIS_URL": url})
    parser = configparser.RawConfigParser()
    parser.read_string(local.supervisord_config(plan, nginx="nginx"))

    assert plan.redis == url
    assert "program:redis" not in parser.sections()
    assert 9200 not in plan.local_ports
