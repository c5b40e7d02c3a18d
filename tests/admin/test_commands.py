"""`todoscale admin grant|revoke` and `todoscale profile` (py-spy)."""

from __future__ import annotations

import os

from todoscale.admin import commands
from todoscale.cli import cli
from todoscale.extensions import db
from todoscale.models import User


def _is_admin(app, name):
    with app.app_context():
        return db.session.query(User).filter_by(username=name).one().is_admin


def test_grant_and_revoke_set_the_role_and_are_logged(app, runner, alice, records_of):
    with records_of("todoscale.security") as records:
        granted = runner.invoke(cli, ["admin", "grant", "alice"])
        assert granted.exit_code == 0, granted.output
        assert _is_admin(app, "alice")
        revoked = runner.invoke(cli, ["admin", "revoke", "ALICE"])
    assert revoked.exit_code == 0 and not _is_admin(app, "alice")
    events = [r.getMessage() for r in records]
    assert events == ["admin.granted", "admin.revoked"]


def test_an_unknown_user_is_an_error(runner):
    result = runner.invoke(cli, ["admin", "grant", "nobody"])
    assert result.exit_code != 0 and "nobody" in result.output


def test_create_user_admin_makes_an_admin(app, runner):
    args = ["create-user", "chief", "--admin", "--email", "c@example.com"]
    result = runner.invoke(cli, [*args, "--password", "long enough pw"])
    assert result.exit_code == 0, result.output
    assert _is_admin(app, "chief")


def test_profile_records_with_py_spy_without_pausing_the_target():
    argv = commands.spy_argv(123, dump=False, seconds=5, rate=50, output="out.svg")
    assert argv[1:4] == ["record", "--pid", "123"]
    assert "--nonblocking" in argv and "--subprocesses" in argv
    assert commands.spy_argv(123, dump=True, seconds=5, rate=50, output="x")[1] == "dump"


def test_profile_dumps_a_live_process(runner):
    # This process is ours (root in CI, or our own child): py-spy may read it.
    result = runner.invoke(cli, ["profile", str(os.getpid()), "--dump"])
    assert result.exit_code == 0, result.output
    assert "Thread" in result.output or "Process" in result.output
