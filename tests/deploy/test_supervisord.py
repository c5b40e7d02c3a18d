"""The supervisord renderer: what supervisord reads back is what was rendered."""

from __future__ import annotations

import shlex

import pytest
from supervisor.options import ServerOptions

from todoscale.deploy import supervisord


def _read_back(tmp_path, program):
    """The program as supervisord's own configuration parser reads it."""
    daemon = supervisord.Daemon(tmp_path, logs=tmp_path)
    path = supervisord.config_path(tmp_path)
    path.write_text(supervisord.render("a test", [program], {}, daemon))
    options = ServerOptions()
    options.realize(args=["-c", str(path)])
    (group,) = options.process_group_configs
    (config,) = group.process_configs
    return config


def test_a_command_reads_back_as_the_argv_it_came_from(tmp_path):
    # An empty argument (redis-server's `--save ""`), a space, %, quotes, a backslash.
    argv = ["/bin/echo", "", "daemon off;", "100%", 'say "hi"', "it's", "back\\slash"]
    program = supervisord.Program("odd", argv, log=str(tmp_path / "odd.log"), directory="/")

    config = _read_back(tmp_path, program)

    assert shlex.split(config.command) == argv


def test_environment_values_read_back_and_passed_ones_come_from_supervisords_own(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("TODOSCALE_TEST_SECRET", "s3cret")
    env = {"QUOTED": 'say "hi", 50% \\ off', "EMPTY": "", "APOSTROPHE": "it's, 5%"}
    program = supervisord.Program(
        "odd",
        ["/bin/true"],
        log="/dev/stdout",
        directory="/",
        env=env,
        passed=("TODOSCALE_TEST_SECRET",),
    )

    config = _read_back(tmp_path, program)

    assert config.environment == {**env, "TODOSCALE_TEST_SECRET": "s3cret"}


@pytest.mark.parametrize("value", ['"it\'s"', '"quoted"', "'quoted'"])
def test_a_value_supervisord_would_read_differently_is_refused(tmp_path, value):
    program = supervisord.Program(
        "odd", ["/bin/true"], log="/dev/stdout", directory="/", env={"X": value}
    )

    with pytest.raises(ValueError, match="cannot read the value"):
        program.section()
