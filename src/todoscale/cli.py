"""The `todoscale` command: Flask's CLI plus serve, create-user and seed."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup
from flask_migrate import upgrade

from todoscale.admin import commands as admin_commands
from todoscale.app import create_app
from todoscale.bench.commands import bench
from todoscale.config import ConfigurationError
from todoscale.deploy import cluster_commands, embedded, servers
from todoscale.deploy.cluster import ClusterError
from todoscale.exceptions import TodoscaleError
from todoscale.models.crypto import generate_key
from todoscale.services import accounts, crypto, seeding

cli = FlaskGroup(create_app=create_app, help="todoscale: a collaborative todo service.")


@cli.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="gunicorn configuration file (default: the package's deploy/gunicorn.conf.py).",
)
@click.option(
    "--server",
    type=click.Choice(servers.SERVERS),
    default=None,
    help="HTTP server (default: TODOSCALE_SERVER, granian).",
)
@click.option(
    "--socketio",
    is_flag=True,
    help="Be a Socket.IO service: gunicorn with one gevent worker serving /socket.io/ too.",
)
def serve(config_path: str | None, server: str | None, socketio: bool) -> None:
    """Migrate the database, then serve the app with granian or gunicorn."""
    upgrade()
    if socketio:
        os.environ.update(servers.SOCKETIO_ENV)
        os.execv(sys.executable, servers.socketio_argv(servers.bind_spec(os.environ)))
    chosen = server or current_app.config["SERVER"]
    try:
        args = servers.server_argv(chosen, os.environ, Path(current_app.instance_path), config_path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    # The server's metrics group: granian's is set up by todoscale.prefork, gunicorn's by
    # its master (deploy/gunicorn.conf.py).
    os.execv(sys.executable, args)


@cli.command("run")
def run_all() -> None:
    """Migrate, then run the HTTP server, the Socket.IO service and a Celery worker with beat."""
    upgrade()
    app = current_app
    try:
        argv = embedded.prepare(app.instance_path, os.environ, app.config, app.extensions["celery"])
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    host, port = servers.bind_address(os.environ)
    live = embedded.socketio_port(os.environ)
    click.echo(
        f"todoscale on http://{host}:{port}/ (HTTP: granian on every core; live updates: "
        f"Socket.IO on port {live}; jobs: a Celery worker with beat). Ctrl-C stops them all.",
        err=True,
    )
    sys.stderr.flush()
    os.execv(argv[0], argv)


@cli.command("create-user")
@click.argument("username")
@click.option("--email", prompt=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
def create_user(username: str, email: str, password: str, admin: bool) -> None:
    """Create a user (with an Inbox list)."""
    try:
        user = accounts.register_user(username, email, password, is_admin=admin)
    except TodoscaleError as exc:
        raise click.ClickException(_describe(exc)) from exc
    click.echo(f"Created {'admin ' if admin else ''}user {user.username} ({user.id}).")


@cli.command()
@click.option("--users", default=1, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--todos",
    default=10_000,
    show_default=True,
    type=click.IntRange(0, 10_000_000),
    help="Todos in all, spread over the users' Inboxes.",
)
@click.option("--password", default="password123", show_default=True)
@click.option("--prefix", default="user", show_default=True, help="Usernames are <prefix>N.")
def seed(users: int, todos: int, password: str, prefix: str) -> None:
    """Load the reference workload by bulk insert (10,000 todos by default)."""
    started = time.perf_counter()
    try:
        names = seeding.seed(users=users, todos=todos, password=password, prefix=prefix)
    except TodoscaleError as exc:
        raise click.ClickException(_describe(exc)) from exc
    click.echo(
        f"Seeded {len(names)} users ({names[0]}..{names[-1]}, password {password!r}) "
        f"and {todos} todos in {time.perf_counter() - started:.1f} s."
    )


cli.add_command(cluster_commands.group)
cli.add_command(admin_commands.group)
cli.add_command(admin_commands.profile)
cli.add_command(bench)


def _describe(exc: TodoscaleError) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        return "; ".join(f"{field} {', '.join(msgs)}" for field, msgs in errors.items())
    return exc.detail


@cli.group()
def keys() -> None:
    """Encryption keys of todo notes (TODOSCALE_ENCRYPTION_KEYS)."""


@keys.command("generate")
def generate() -> None:
    """Print a new Fernet key: put it first in TODOSCALE_ENCRYPTION_KEYS."""
    click.echo(generate_key())


@keys.command("rotate")
@click.option("--batch", default=crypto.ROTATE_BATCH, show_default=True, help="Todos per commit.")
def rotate(batch: int) -> None:
    """Seal every todo's notes with the first key, in batches, while the service runs."""
    try:
        changed = crypto.rotate_notes(batch)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{changed} notes sealed with the first key.")


def main() -> None:
    """Entry point of the `todoscale` console script."""
    try:
        cli.main(prog_name="todoscale")
    except ConfigurationError as exc:  # which setting to fix, not a traceback
        sys.exit(f"todoscale: {exc}")


if __name__ == "__main__":
    main()
