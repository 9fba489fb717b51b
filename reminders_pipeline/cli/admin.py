"""`reminders admin`: serve the admin API and manage its tokens.

FastAPI and the server (Granian) are imported inside `serve` only, so every other
`reminders` command starts without them.
"""

from __future__ import annotations

import click

from reminders_pipeline.admin.tokens import READ, SCOPES, TokenStore
from reminders_pipeline.cli.common import print_json
from reminders_pipeline.db.connector import Database


def _token_store() -> TokenStore:
    """The database's tokens: a missing or unmigrated database fails here, in one line."""
    from reminders_pipeline.db.schema_version import ensure_migrated_database_url

    return TokenStore(Database(ensure_migrated_database_url()))


@click.group()
def admin() -> None:
    """The admin API: serve it, manage its bearer tokens."""


@admin.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="TCP port."
)
def serve(host: str, port: int) -> None:
    """Serve the admin API (OpenAPI docs at /docs) on the reminders database."""
    from reminders_pipeline.admin.serving import serve as serve_api
    from reminders_pipeline.settings import AdminApiSettings

    limits = AdminApiSettings.from_env()
    if not any(t["revoked_at"] is None for t in _token_store().list()):
        click.echo(
            "warning: no active token, so every request but /healthz will be refused (401);"
            " create one: reminders admin create-token NAME --scope read",
            err=True,
        )
    serve_api(host, port, limits)


@admin.command("create-token")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    type=click.Choice(SCOPES),
    multiple=True,
    help=f"A scope to grant (repeatable); default {READ}.",
)
def create_token(name: str, scopes: tuple[str, ...]) -> None:
    """Create a bearer token NAME. It is printed once, on stdout; only its hash is kept."""
    granted = scopes or (READ,)
    token = _token_store().create(name, granted)
    click.echo(
        f"created token {name!r} with scope(s) {', '.join(sorted(set(granted)))}; "
        "it is shown only now, store it safely:",
        err=True,
    )
    click.echo(token)


@admin.command("revoke-token")
@click.argument("name")
def revoke_token(name: str) -> None:
    """Revoke the bearer token NAME at once."""
    revoked_at = _token_store().revoke(name)
    click.echo(f"revoked token {name!r} at {revoked_at.isoformat(timespec='seconds')}")


@admin.command("list-tokens")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_tokens(as_json: bool) -> None:
    """Token names, scopes and use (never the tokens themselves)."""
    rows = _token_store().list()
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no tokens")
    for r in rows:
        state = f"revoked {r['revoked_at']:%F}" if r["revoked_at"] else "active"
        used = f"last used {r['last_used_at']:%F %T}" if r["last_used_at"] else "never used"
        click.echo(f"{r['name']:<24} {','.join(r['scopes']):<14} {state:<18} {used}")
