"""What the settings name on disk: the instance folder, its secret key, metrics and queue."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from todoscale.config.loading import ConfigurationError


def ensure_secret_key(values: dict[str, Any], instance_path: str) -> str:
    """Return the configured secret key; outside production, create one in the instance folder."""
    if values.get("SECRET_KEY"):
        return str(values["SECRET_KEY"])
    if values["ENV_NAME"] == "production":
        raise ConfigurationError(
            "TODOSCALE_SECRET_KEY is not set. Export a long random value, e.g. "
            "TODOSCALE_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))'), "
            "or run with TODOSCALE_ENV=development."
        )
    path = os.path.join(instance_path, "secret_key")
    if os.path.exists(path):
        return _read_key(path)
    # The key is written whole to a file of its own, then linked into place. link() fails
    # when the name exists, so when several workers start at once exactly one key wins, and
    # no reader ever finds the name before its content (as it could between an O_EXCL
    # create and the write that followed it).
    fd, temporary = tempfile.mkstemp(dir=instance_path, prefix=".secret_key.")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as new:
            new.write(os.urandom(32).hex())
            new.flush()
            os.fsync(new.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: its key is the key
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read_key(path)


def _read_key(path: str) -> str:
    with open(path, encoding="ascii") as existing:
        key = existing.read().strip()
    if not key:
        raise ConfigurationError(
            f"The secret key file {path} is empty. Delete it (a new key is generated) "
            "or set TODOSCALE_SECRET_KEY."
        )
    return key


def broker_url(values: Mapping[str, Any], instance_path: str) -> str:
    """The Celery broker: TODOSCALE_BROKER_URL, else Redis, else a persistent local SQLite queue."""
    if values.get("BROKER_URL"):
        return str(values["BROKER_URL"])
    if values.get("REDIS_URL"):
        return str(values["REDIS_URL"])
    return "sqla+sqlite:///" + os.path.join(instance_path, "queue.sqlite")


def instance_folder(values: Mapping[str, Any]) -> str:
    """The instance folder: TODOSCALE_INSTANCE_PATH, else `./instance`, made absolute."""
    return os.path.abspath(values.get("INSTANCE_PATH") or "instance")


def metrics_root(values: Mapping[str, Any]) -> str:
    """The host's metrics folder: TODOSCALE_METRICS_DIR, else `<instance folder>/metrics`."""
    return os.path.abspath(
        values.get("METRICS_DIR") or os.path.join(instance_folder(values), "metrics")
    )
