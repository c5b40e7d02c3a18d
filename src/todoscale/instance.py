"""The instance folder is its owner's alone: the folder 0700, its SQLite files 0600.

It holds the generated secret key, the embedded database and the local job queue; other
users of the host have no business reading any of them. A leaf: imports nothing of ours.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import make_url


def prepare_instance(instance_path: str) -> None:
    """Create the instance folder for its owner alone (0700), tightening one that exists."""
    os.makedirs(instance_path, mode=0o700, exist_ok=True)
    _owner_only(instance_path, 0o700)


def keep_private(*urls: str) -> None:
    """Make the SQLite files of these URLs (the database, the local queue) 0600: created empty
    when missing (SQLite gives its -wal and -shm files the database file's mode), tightened
    when they exist. Other URLs are left alone."""
    for url in urls:
        target = make_url(url.removeprefix("sqla+"))
        database = target.database or ""
        if target.get_backend_name() != "sqlite" or database in ("", ":memory:"):
            continue
        if database.startswith("file:"):
            continue  # a URI filename: SQLite's to resolve
        try:
            os.close(os.open(database, os.O_RDONLY | os.O_CREAT, 0o600))
        except (FileNotFoundError, PermissionError):
            continue  # no such folder, or not ours: the engine says so when it connects
        _owner_only(database, 0o600)


def _owner_only(path: str, mode: int) -> None:
    status = os.stat(path)
    # Only what this user owns can be changed; anything else is the operator's choice.
    if status.st_uid == os.geteuid() and status.st_mode & 0o777 != mode:
        os.chmod(path, mode)
