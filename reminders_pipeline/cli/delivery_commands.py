"""`reminders deliver` (drain the outbox once) and `reminders mentor` (a mentor's channels)."""

from __future__ import annotations

import click

from reminders_pipeline.cli.common import print_json
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.embedded import ensure_database_url
from reminders_pipeline.db.schema_version import ensure_migrated_database_url
from reminders_pipeline.delivery.config import no_channel_note
from reminders_pipeline.delivery.mentors import configure_mentor


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object of counts.")
@click.pass_context
def deliver(ctx: click.Context, as_json: bool) -> None:
    """Send the reminders due for email and webhook once (never takes the run lock).

    Prints what this invocation did: sent, retry (will be tried again), dead
    (given up), cancelled (a contact came first), and late: outcomes not recorded
    because the lease was lost meanwhile (a freeze; logged). Exit 1 when a channel
    could not be served (not configured, or its lane failed).
    """
    url = ensure_migrated_database_url()
    # Imported here: the senders' HTTP client (httpx) would slow every other command's start.
    from reminders_pipeline.delivery.deliverer import drain_from_env

    report = drain_from_env(Database(url))
    if as_json:
        print_json({**report.totals(), "late": report.late})
    else:
        for channel, counts in sorted(report.channels.items()):
            click.echo(f"{channel}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        totals = report.totals()
        click.echo("total: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
        if report.late:
            click.echo(f"late (lease lost, not recorded): {report.late}")
    if note := no_channel_note():
        click.echo(f"note: {note}", err=True)
    for problem in report.problems:
        click.echo(f"error: {problem}", err=True)
    ctx.exit(1 if report.problems else 0)


@click.command()
@click.argument("mentor_id", type=int)
@click.option("--channels", help="Comma list of in_app,email,webhook, or 'default'.")
@click.option("--language", help="nb or en, or 'default'.")
@click.option("--email", help="The mentor's email address.")
@click.option("--json", "as_json", is_flag=True)
def mentor(
    mentor_id: int, channels: str | None, language: str | None, email: str | None, as_json: bool
) -> None:
    """Set a mentor's own reminder channels, language or email address."""
    row = configure_mentor(
        Database(ensure_database_url()),
        mentor_id,
        channels=channels,
        language=language,
        email=email,
    )
    if as_json:
        print_json(row)
        return
    click.echo(
        f"mentor {row['id']} ({row['name']}): email {row['email'] or '-'}, channels "
        f"{','.join(row['channels']) if row['channels'] else 'organisation default'}, language "
        f"{row['language'] or 'organisation default'}"
    )
