"""Configuration: environments, TODOSCALE_* variables, the secret key."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

from todoscale.config import ConfigurationError, ensure_secret_key, load_config

pytestmark = pytest.mark.database_free  # settings and their files, no database


def test_defaults_are_the_embedded_development_setup():
    values = load_config({})
    assert values["ENV_NAME"] == "development"
    assert values["SQLALCHEMY_DATABASE_URI"] is None  # SQLite in the instance folder
    assert values["TRUSTED_PROXIES"] == 0
    assert values["TOKEN_TTL_SECONDS"] == 86400


def test_variables_override_and_are_parsed():
    values = load_config(
        {
            "TODOSCALE_ENV": "production",
            "TODOSCALE_DB_POOL_SIZE": "20",
            "TODOSCALE_REQUEST_LOG": "off",
            "TODOSCALE_DATABASE_URL": "postgresql+psycopg://db/todoscale",
        }
    )
    assert values["ENV_NAME"] == "production"
    assert values["HSTS"] is True
    assert values["DB_POOL_SIZE"] == 20
    assert values["REQUEST_LOG"] is False
    assert values["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://db/todoscale"


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"TODOSCALE_ENV": "staging"}, "TODOSCALE_ENV='staging' is not an environment"),
        ({"TODOSCALE_DB_POOL_SIZE": "many"}, "TODOSCALE_DB_POOL_SIZE is malformed"),
        ({"TODOSCALE_REQUEST_LOG": "perhaps"}, "TODOSCALE_REQUEST_LOG is malformed"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(environ, says):
    with pytest.raises(ConfigurationError, match=says):
        load_config(environ)


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    values = load_config({"TODOSCALE_ENV": "production"})
    with pytest.raises(ConfigurationError) as raised:
        ensure_secret_key(values, str(tmp_path))
    assert "TODOSCALE_SECRET_KEY is not set" in str(raised.value)
    assert "export" in str(raised.value).lower()
    assert not (tmp_path / "secret_key").exists()


def test_production_uses_the_given_key(tmp_path):
    values = load_config({"TODOSCALE_ENV": "production", "TODOSCALE_SECRET_KEY": "s3cret"})
    assert ensure_secret_key(values, str(tmp_path)) == "s3cret"


def test_the_embedded_default_generates_a_private_key_once_and_keeps_it(tmp_path):
    values = load_config({})
    first = ensure_secret_key(values, str(tmp_path))
    second = ensure_secret_key(values, str(tmp_path))
    assert first == second
    assert len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def _key_of_a_starting_worker(instance: str, barrier: Any, keys: Any) -> None:
    barrier.wait()  # every worker at once, as gunicorn's and granian's start
    keys.put(ensure_secret_key(load_config({}), instance))


def test_workers_starting_at_once_all_read_the_same_whole_key(tmp_path):
    # Before, one worker created the file (O_EXCL) and then wrote it: another could open it
    # in between and read an empty key. Eight processes at once, 25 times over.
    context = multiprocessing.get_context("fork")
    for round_ in range(25):
        folder = tmp_path / str(round_)
        folder.mkdir()
        barrier, keys = context.Barrier(8), context.Queue()
        workers = [
            context.Process(target=_key_of_a_starting_worker, args=(str(folder), barrier, keys))
            for _ in range(8)
        ]
        for worker in workers:
            worker.start()
        seen = [keys.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        assert len(set(seen)) == 1 and len(seen[0]) == 64, (round_, seen)
        assert [path.name for path in folder.iterdir()] == ["secret_key"]  # no leftovers


def test_an_empty_key_file_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "secret_key").write_text("")

    with pytest.raises(ConfigurationError, match=r"is empty\. Delete it"):
        ensure_secret_key(load_config({}), str(tmp_path))
