"""The `todoscale` command: create-user, seed, routes, db upgrade."""

from __future__ import annotations

import os
import subprocess
import sys

from cryptography.fernet import Fernet
from flask_migrate import upgrade
from sqlalchemy import func, select

from tests.conftest import PROJECT_ROOT
from todoscale import create_app
from todoscale.cli import cli
from todoscale.extensions import db
from todoscale.models import Todo, TodoList, User
from todoscale.services.accounts import register_user
from todoscale.services.todos import create_todo


def test_create_user_makes_user_with_inbox(app, runner):
    result = runner.invoke(
        cli,
        args=[
            "create-user",
            "carol",
            "--email",
            "carol@example.com",
            "--password",
            "long enough pw",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Created user carol" in result.output
    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == "carol")).one()
        assert not user.is_admin
        assert db.session.scalar(select(TodoList.name).where(TodoList.owner_id == user.id)) == (
            "Inbox"
        )


def test_create_user_admin_flag(app, runner):
    result = runner.invoke(
        cli,
        args=[
            "create-user",
            "root_user",
            "--email",
            "r@example.com",
            "--password",
            "long enough pw",
            "--admin",
        ],
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(select(User.is_admin).where(User.username == "root_user"))


def test_create_user_reports_invalid_input_and_writes_nothing(app, runner):
    result = runner.invoke(cli, args=["create-user", "x", "--email", "nope", "--password", "short"])
    assert result.exit_code != 0
    assert "username" in result.output and "password" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_create_user_refuses_a_taken_name(app, runner):
    def create(email: str):
        return runner.invoke(
            cli, args=["create-user", "dave", "--email", email, "--password", "long enough pw"]
        )

    assert create("dave@example.com").exit_code == 0
    again = create("other@example.com")
    assert again.exit_code != 0
    assert "already registered" in again.output


def test_seed_loads_the_reference_workload(app, runner):
    result = runner.invoke(
        cli, args=["seed", "--users", "3", "--todos", "1000", "--prefix", "seeded"]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 3
        assert db.session.scalar(select(func.count()).select_from(Todo)) == 1000
        per_list = db.session.execute(
            select(Todo.list_id, func.count()).group_by(Todo.list_id)
        ).all()
        assert sorted(count for _, count in per_list) == [333, 333, 334]


def test_seeded_users_can_log_in_and_read_newest_first(app, runner, client):
    assert runner.invoke(cli, args=["seed", "--users", "1", "--todos", "25"]).exit_code == 0
    response = client.post("/api/v1/tokens", auth=("user1", "password123"))
    assert response.status_code == 201
    token = response.get_json()["token"]
    page = client.get("/api/v1/todos?limit=3", headers={"Authorization": f"Bearer {token}"})
    assert [item["title"] for item in page.get_json()["items"]] == [
        "Todo number 25",
        "Todo number 24",
        "Todo number 23",
    ]


def test_seed_refuses_existing_users(app, runner):
    assert runner.invoke(cli, args=["seed", "--users", "1", "--todos", "0"]).exit_code == 0
    again = runner.invoke(cli, args=["seed", "--users", "1", "--todos", "0"])
    assert again.exit_code != 0
    assert "--prefix" in again.output


def test_routes_lists_the_api(runner):
    result = runner.invoke(cli, args=["routes"])
    assert result.exit_code == 0
    assert "/api/v1/todos" in result.output


def test_db_upgrade_builds_a_fresh_database(tmp_path):
    env = {**os.environ, "TODOSCALE_INSTANCE_PATH": str(tmp_path), "TODOSCALE_ENV": "development"}
    env.pop("TODOSCALE_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "todoscale.cli", "db", "upgrade"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "todoscale.db").exists()
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_keys_generate_prints_a_fernet_key(runner):
    result = runner.invoke(cli, ["keys", "generate"])
    assert result.exit_code == 0
    Fernet(result.output.strip().encode())  # a well-formed key


def test_keys_rotate_seals_the_notes_or_says_what_is_missing(app, runner, make_app):
    refused = runner.invoke(cli, ["keys", "rotate"])
    assert refused.exit_code != 0 and "TODOSCALE_ENCRYPTION_KEYS" in refused.output
    keyed = make_app(ENCRYPTION_KEYS=[Fernet.generate_key().decode()])
    with keyed.app_context():
        upgrade()
        user = register_user("olive", "olive@example.com", "long enough pw")
        create_todo(user, title="t", notes="a secret")
    result = keyed.test_cli_runner().invoke(cli, ["keys", "rotate", "--batch", "10"])
    assert result.exit_code == 0, result.output
    assert "0 notes sealed" in result.output  # written sealed already


def test_a_fresh_database_has_no_account(make_app):
    # No default account (admin, root, ...): none exists until someone makes one.
    fresh = make_app()
    with fresh.app_context():
        upgrade()
        assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_seed_refuses_to_run_in_production(app, row_counts):
    production = create_app(
        {
            "ENV_NAME": "production",
            "TESTING": True,  # keeps the suite's logging as it is
            "SECRET_KEY": "x" * 32,
            "INSTANCE_PATH": app.instance_path,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REALTIME": "off",
        }
    )
    before = row_counts()

    result = production.test_cli_runner().invoke(cli, args=["seed", "--users", "2", "--todos", "5"])

    assert result.exit_code != 0
    assert "refuses to run in production" in result.output
    assert row_counts() == before
    with production.app_context():
        db.session.remove()
        db.engine.dispose()
