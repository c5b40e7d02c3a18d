"""Configuration: environments, TODOSCALE_* variables, the secret key."""

from __future__ import annotations

import pytest

from todoscale.config import ConfigurationError, ensure_secret_key, load_config


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
