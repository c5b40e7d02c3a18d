"""The instance folder is its owner's alone: 0700, its database and queue files 0600."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from todoscale.instance import keep_private, prepare_instance


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.database_free  # a process on SQLite in its instance folder
def test_a_fresh_instance_is_private_whatever_the_umask(tmp_path):
    instance = tmp_path / "instance"
    env = {key: value for key, value in os.environ.items() if not key.startswith("TODOSCALE_")}
    env.update(TODOSCALE_ENV="development", TODOSCALE_INSTANCE_PATH=str(instance))

    done = subprocess.run(
        [sys.executable, "-m", "todoscale.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        umask=0o022,  # the usual one: files 0644, folders 0755
    )

    assert done.returncode == 0, done.stderr
    assert _mode(instance) == 0o700
    files = {path.name: _mode(path) for path in instance.iterdir() if path.is_file()}
    assert {"todoscale.db", "queue.sqlite", "secret_key"} <= set(files)
    assert {name: mode for name, mode in files.items() if mode != 0o600} == {}


def test_an_instance_made_before_is_tightened(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    database = instance / "todoscale.db"
    database.write_bytes(b"")
    database.chmod(0o644)

    prepare_instance(str(instance))
    keep_private(f"sqlite:///{database}", f"sqla+sqlite:///{instance / 'queue.sqlite'}")

    assert _mode(instance) == 0o700
    assert _mode(database) == 0o600
    assert _mode(instance / "queue.sqlite") == 0o600


def test_only_sqlite_files_are_touched(tmp_path):
    keep_private(
        "postgresql+psycopg://postgres@127.0.0.1/x",
        "redis://127.0.0.1:6379/0",
        "amqp://guest@127.0.0.1//",
        "sqlite://",
        f"sqlite:///{tmp_path / 'missing' / 'folder.db'}",
    )

    assert list(tmp_path.iterdir()) == []
