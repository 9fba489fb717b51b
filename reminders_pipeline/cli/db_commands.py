"""`reminders db`: schema migrations and the embedded server."""

from __future__ import annotations

from typing import Any

import click

from reminders_pipeline import settings
from reminders_pipeline.cli.common import print_json
from reminders_pipeline.db.embedded import (
    embedded_pgdata,
    embedded_status,
    ensure_database_url,
    stop_embedded,
)
from reminders_pipeline.db.url import configured_database_url, describe
from reminders_pipeline.errors import ConfigError


@click.group()
def db() -> None:
    """Schema migrations and the embedded server."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply missing migrations (a no-op when the schema is current).

    Never under a run: with something to apply, it waits for the run lock (up to
    REMINDERS_MIGRATION_LOCK_WAIT_S, default 60) and refuses if a run still holds it.
    """
    from reminders_pipeline.db.migrate import upgrade

    def waiting(holder: Any) -> None:
        click.echo(f"waiting for the reminders run lock, held by {holder.describe()} ...", err=True)

    before, after = upgrade(ensure_database_url(), on_wait=waiting)
    if before == after:
        click.echo(f"schema already at {after}")
    else:
        click.echo(f"schema upgraded from {before or 'nothing'} to {after}")


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def db_status(as_json: bool) -> None:
    """Show the schema revision of the database and of the code, and which server it is.

    Never starts the embedded server: when it is not running, says so.
    """
    from reminders_pipeline.db.migrate import current_revision, head_revision

    data: dict[str, Any] = {"code": head_revision(), "database": None, "embedded": None}
    url = configured_database_url()
    if url is None:
        status = embedded_status(embedded_pgdata())
        data["embedded"] = {
            "running": status.running,
            "pid": status.pid,
            "port": status.port,
            "socket_dir": status.socket_dir,
            "pgdata": str(status.pgdata),
            "used_by_pids": status.users,
        }
        if status.running:
            # Joins the running server: this process holds a handle until it exits.
            data["database"] = current_revision(ensure_database_url()) or "nothing"
        server = (
            f"embedded PostgreSQL: running, pid {status.pid}, port {status.port}, "
            f"socket {status.socket_dir}, data {status.pgdata}; used by pids "
            f"{', '.join(map(str, status.users)) or 'none'} (`reminders db stop` stops it)"
            if status.running
            else f"embedded PostgreSQL: not running (data {status.pgdata}); "
            "any reminders command starts it"
        )
    else:
        data["database"] = current_revision(url) or "nothing"
        server = f"server: {describe(url)} (REMINDERS_DATABASE_URL; not embedded)"
    if as_json:
        print_json(data)
        return
    schema = data["database"] or "unknown (server not running)"
    click.echo(f"database: {schema}; code: {data['code']}")
    click.echo(server)


@db.command("stop")
@click.option("--force", is_flag=True, help="Stop it even while other processes use it.")
def db_stop(force: bool) -> None:
    """Stop the embedded PostgreSQL (it also stops when the last process using it exits)."""
    if settings.DATABASE_URL.is_set():
        raise ConfigError(
            "REMINDERS_DATABASE_URL is set: that server is not embedded, stop it where it runs"
        )
    status = stop_embedded(embedded_pgdata(), force=force)
    if status.running:
        click.echo(f"stopped the embedded PostgreSQL (pid {status.pid}) in {status.pgdata}")
    else:
        click.echo(f"the embedded PostgreSQL in {status.pgdata} is not running")
