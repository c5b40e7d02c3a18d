"""deploy/'s example configurations are the package's renderings (`make deploy-files`)."""

from __future__ import annotations

import configparser
import re

import pytest

from tests.conftest import PROJECT_ROOT
from todoscale.deploy import examples, nginx, programs

DEPLOY = PROJECT_ROOT / "deploy"


@pytest.mark.parametrize("name", sorted(examples.EXAMPLES))
def test_every_example_file_is_the_packages_rendering(name):
    assert (DEPLOY / name).read_text() == examples.EXAMPLES[name](), (
        f"deploy/{name} is stale: regenerate it with `make deploy-files`"
    )


def test_deploy_files_writes_every_example(tmp_path):
    written = examples.write(tmp_path)

    assert sorted(path.relative_to(tmp_path).as_posix() for path in written) == sorted(
        examples.EXAMPLES
    )
    for path in written:
        assert path.read_text() == examples.EXAMPLES[path.relative_to(tmp_path).as_posix()]()


def test_the_supervisor_example_runs_an_instance_per_server_of_the_nginx_example():
    parser = configparser.RawConfigParser()
    parser.read_string(programs.example())
    binds = {}
    for name in parser.sections():
        found = re.search(r'TODOSCALE_BIND="([^"]+)"', parser[name].get("environment", ""))
        if found:
            binds[name.removeprefix("program:")] = found.group(1)
    site = nginx.Site()

    assert list(binds.values()) == [*site.app_servers, *site.socketio_servers]
    assert list(binds) == [f"app{n}" for n in (1, 2, 3)] + [f"socketio{n}" for n in (1, 2, 3)]
