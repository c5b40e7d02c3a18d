"""`todoscale cluster up|down|status`: the local cluster from the command line."""

from __future__ import annotations

import os
from pathlib import Path

import click

from todoscale.config import instance_folder, load_config
from todoscale.deploy import cluster as local
from todoscale.deploy.servers import SERVERS


def _folder() -> Path:
    return _instance_path() / "cluster"


def _instance_path() -> Path:
    return Path(instance_folder(load_config()))


def _database_note(instances: int) -> str | None:
    url = load_config().get("SQLALCHEMY_DATABASE_URI") or "sqlite"
    if not url.startswith("sqlite"):
        return None
    return (
        f"Note: the {instances} instances share one SQLite file. That is safe on one host "
        "(WAL mode: readers never wait, writers take turns); never put the file on a "
        "network filesystem. Set TODOSCALE_DATABASE_URL to PostgreSQL to scale further."
    )


@click.group(name="cluster")
def group() -> None:
    """A local cluster: nginx in front of N app instances, under supervisord."""


@group.command()
@click.option("--instances", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--app-port",
    default=None,
    type=click.IntRange(1, 65535),
    help="First app instance's port; the others follow it (default: --port + 1).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address nginx listens on.")
@click.option(
    "--server",
    type=click.Choice(SERVERS),
    default=None,
    help="HTTP server of each instance (default: TODOSCALE_SERVER).",
)
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Per instance.")
@click.option("--tls-port", type=click.IntRange(1, 65535), default=None, help="Serve HTTPS too.")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--key", type=click.Path(exists=True, dir_okay=False), default=None)
def up(
    instances: int,
    port: int,
    app_port: int | None,
    host: str,
    server: str | None,
    workers: int | None,
    tls_port: int | None,
    cert: str | None,
    key: str | None,
) -> None:
    """Start nginx on --port in front of --instances app instances; return once all answer."""
    if tls_port and not (cert and key):
        raise click.UsageError("--tls-port needs --cert and --key (PEM files).")
    config = load_config()
    plan = local.Plan(
        instance_path=_instance_path(),
        port=port,
        instances=instances,
        app_port=app_port or 0,
        server=server or config["SERVER"],
        workers=workers,
        tls_port=tls_port,
        certificate=os.path.abspath(cert) if cert else None,
        certificate_key=os.path.abspath(key) if key else None,
        host=host,
        # The environment's Redis (TODOSCALE_REDIS_URL); None: the cluster runs its own.
        redis_url=config["REDIS_URL"] or None,
    )
    note = _database_note(instances)
    if note:
        click.echo(note)
    try:
        local.up(plan)
    except local.ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"nginx on http://{host}:{port}/ in front of {instances} instances")
    if tls_port:
        click.echo(f"HTTPS on https://{host}:{tls_port}/")
    click.echo(f"Configuration and logs: {plan.folder}\n{local.status(plan.folder)}")


@group.command()
def down() -> None:
    """Stop every process the cluster started (supervisord, nginx, the instances)."""
    stopped = local.down(_folder())
    if not stopped:
        click.echo(f"No cluster is running from {_folder()}.")
        return
    supervisor, *groups = stopped
    listed = " ".join(map(str, groups))
    click.echo(f"Stopped supervisord ({supervisor}) and {len(groups)} programs' groups: {listed}")


@group.command()
def status() -> None:
    """Each process of the cluster: running or not, its pid and uptime."""
    click.echo(local.status(_folder()))
