"""`reminders prune`: keep the reminders table to the history an operator needs."""

from __future__ import annotations

import click

from reminders_pipeline.cli.common import print_json
from reminders_pipeline.core.prune import prune_cutoff, prune_reminders
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.schema_version import ensure_migrated_database_url
from reminders_pipeline.settings import ReminderSettings


@click.command()
@click.option(
    "--older-than",
    "older_than",
    type=int,
    required=True,
    help="Delete reminders created more than this many days ago (365 keeps a year).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def prune(older_than: int, as_json: bool) -> None:
    """Delete old reminders of finished silences (never pending ones, never a running silence's)."""
    settings = ReminderSettings.from_env()
    before = prune_cutoff(settings.today(), older_than, settings.timezone)
    url = ensure_migrated_database_url()
    deleted = prune_reminders(Database(url), before)
    if as_json:
        print_json({"deleted": deleted, "created_before": before.isoformat()})
    else:
        click.echo(f"deleted {deleted} reminders created before {before.isoformat()}")
