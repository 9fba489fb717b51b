"""The `reminders` command."""

from __future__ import annotations

import logging
import sys
import time
import traceback
from datetime import timedelta

import click

from reminders_pipeline.cli.admin import admin
from reminders_pipeline.cli.backfill import backfill
from reminders_pipeline.cli.common import print_json
from reminders_pipeline.cli.db_commands import db, db_upgrade
from reminders_pipeline.cli.delivery_commands import deliver, mentor
from reminders_pipeline.cli.prune import prune
from reminders_pipeline.cli.ui import ui
from reminders_pipeline.core.run_day import check_day, choose_lock_scope, run_day
from reminders_pipeline.core.runlog import RunLog, RunSummary
from reminders_pipeline.core.stop_signals import early_stop_reason, ignore_stop_signals
from reminders_pipeline.db import seed as seeding
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.embedded import ensure_database_url
from reminders_pipeline.db.lock_holder import lock_holder, lock_state
from reminders_pipeline.db.lock_keys import LOCK_KEY
from reminders_pipeline.db.schema_version import ensure_migrated_database_url
from reminders_pipeline.delivery.config import no_channel_note
from reminders_pipeline.errors import ConfigError, RemindersError, first_line
from reminders_pipeline.settings import ReminderSettings, parse_as_of


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more (SQL steps, Dagster events).")
def cli(verbose: bool) -> None:
    """Daily follow-up reminders for peer mentors.

    The database is REMINDERS_DATABASE_URL; when it is unset, an embedded
    PostgreSQL starts under REMINDERS_HOME (default ./.reminders).
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@cli.command()
@click.option(
    "--assignments",
    "count",
    type=click.IntRange(min=0),
    required=True,
    help="How many assignments.",
)
@click.option(
    "--due-fraction",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Share due today.",
)
@click.option("--reset", is_flag=True, help="Empty the reminders tables first.")
def seed(count: int, due_fraction: float, reset: bool) -> None:
    """Write synthetic mentors, assignments and activities."""
    url = ensure_migrated_database_url()
    settings = ReminderSettings.from_env()
    started = time.perf_counter()
    show = sys.stderr.isatty()
    with click.progressbar(length=count, label="seeding", file=sys.stderr, hidden=not show) as bar:
        result = seeding.seed(
            Database(url),
            assignments=count,
            due_fraction=due_fraction,
            today=settings.today(),
            default_interval_days=settings.default_interval_days,
            reset=reset,
            on_progress=bar.update,
        )
    click.echo(
        f"seeded {result.assignments} assignments for {result.mentors} mentors "
        f"in {time.perf_counter() - started:.1f}s"
    )


def _run(as_of: str | None, as_json: bool) -> RunSummary:
    settings = ReminderSettings.from_env()
    day = parse_as_of(as_of, "--as-of") if as_of is not None else settings.today()
    check_day(day, settings)
    url = ensure_migrated_database_url()
    scope = choose_lock_scope(url)  # before the signal check: it takes a moment too
    reason = early_stop_reason()
    if reason is not None:  # a signal during start-up (reminders_pipeline/entry.py)
        row_id = RunLog(Database(url)).failed_before_start(day, None, "cli", reason)
        return RunSummary("failed", day, None, row_id, error=reason)
    if scope == "transaction":
        # One call of reminders_run_day() under the transaction-level lock: the
        # batched run's session lock cannot live behind a transaction pooler.
        # No Dagster here (nor its start-up time).
        if not as_json:
            click.echo(f"running the reminders day {day} as one SQL call ...", err=True)
        return run_day(url, settings, day)
    from reminders_pipeline.orchestration.launch import run_reminders_job
    from reminders_pipeline.orchestration.partitions import check_partition

    check_partition(day)
    if not as_json:
        click.echo(f"running the reminders job for {day} ...", err=True)
    return run_reminders_job(url, day)


def _print_summary(summary: RunSummary) -> None:
    who = summary.dagster_run_id or f"reminder_runs #{summary.run_row_id}"
    scope = " (one SQL call, transaction lock)" if summary.lock_scope == "transaction" else ""
    click.echo(
        f"{summary.status}: run {who} for {summary.as_of}{scope}: "
        f"{summary.selected} due, {summary.created} reminders created, "
        f"{summary.already_existed} already existed, {summary.duration_s:.2f}s"
    )
    if summary.holder:
        b = summary.holder.to_dict()
        click.echo(f"  lock held by pid {b['pid']} (run {b['run_id']}, since {b['since']})")
    if summary.error:
        click.echo(f"  error: {summary.error}")
    if summary.status == "success" and summary.created and (note := no_channel_note()):
        click.echo(f"  note: {note}")


@cli.command()
@click.option("--as-of", help="The date to run for (YYYY-MM-DD); default today.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def run(ctx: click.Context, as_of: str | None, as_json: bool) -> None:
    """Run the reminders job once (the same job the schedule launches)."""
    summary = _run(as_of, as_json)
    if as_json:
        print_json(summary.to_dict())
    else:
        _print_summary(summary)
    # Decided and told: a late signal must not turn the exit status into its own.
    ignore_stop_signals()
    ctx.exit(0 if summary.status in ("success", "skipped") else 1)


@cli.command()
@click.option(
    "--assignments", "count", type=click.IntRange(min=0), default=10_000, show_default=True
)
@click.option("--due-fraction", type=click.FloatRange(0, 1), default=0.2, show_default=True)
@click.pass_context
def demo(ctx: click.Context, count: int, due_fraction: float) -> None:
    """Migrate, seed fresh demo data, run the job once and show what happened."""
    ctx.invoke(db_upgrade)
    ctx.invoke(seed, count=count, due_fraction=due_fraction, reset=True)
    summary = _run(None, False)
    _print_summary(summary)
    click.echo("execution log (newest first):")
    ctx.invoke(runs, limit=5, as_json=False)
    ctx.exit(0 if summary.status in ("success", "skipped") else 1)


@cli.command()
@click.option("--since", help="First day (YYYY-MM-DD); default 30 days ago.")
@click.option("--until", help="Last day (YYYY-MM-DD); default today.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def missing(since: str | None, until: str | None, as_json: bool) -> None:
    """Days whose reminders were never created (skipped, failed or never run).

    From the Dagster instance (DAGSTER_HOME, or the CLI's own): the days without a
    materialization of reminders/daily_reminders. Prints them comma-separated;
    `reminders backfill --from DAY --missing` queues runs for exactly these days
    (the UI's backfill dialog leaves skipped days out unless "Completed" is ticked).
    """
    from reminders_pipeline.orchestration.dagster_home import dagster_instance
    from reminders_pipeline.orchestration.partitions import missing_days

    today = ReminderSettings.from_env().today()
    first = parse_as_of(since, "--since") if since else today - timedelta(days=30)
    last = parse_as_of(until, "--until") if until else today
    if first > last:
        raise ConfigError(f"--since {first} is after --until {last}")
    with dagster_instance() as instance:
        days = missing_days(instance, first, last)
    if as_json:
        print_json(days)
        return
    click.echo(f"{len(days)} day(s) from {first} to {last} not done", err=True)
    if days:
        click.echo(",".join(days))


@cli.command()
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def runs(limit: int, as_json: bool) -> None:
    """The execution log, newest first."""
    rows = RunLog(Database(ensure_database_url())).recent(limit=limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no runs yet")
    for r in rows:
        duration = f"{r['duration_s']:.2f}s" if r["duration_s"] is not None else "-"
        line = (
            f"#{r['id']:<5} {r['status']:<9} as of {r['as_of']}  "
            f"started {r['started_at']:%Y-%m-%d %H:%M:%S%z}  {duration:>8}  "
            f"due {r['selected'] if r['selected'] is not None else '-'}  "
            f"created {r['created'] if r['created'] is not None else '-'}  ({r['trigger']}"
            f"{', transaction lock' if r.get('lock_scope') == 'transaction' else ''})"
        )
        click.echo(line)
        if r["error"]:
            click.echo(f"       {r['error']}")


@cli.group()
def lock() -> None:
    """The run lock."""


@lock.command("status")
@click.option("--json", "as_json", is_flag=True)
def lock_status(as_json: bool) -> None:
    """Free, or held by whom."""
    holder = lock_holder(ensure_database_url())
    if as_json:
        print_json(lock_state(holder))
    elif holder is None:
        click.echo(f"free (advisory lock {LOCK_KEY[0]}, {LOCK_KEY[1]})")
    else:
        click.echo(f"held by pid {holder.pid}")
        click.echo(f"  application_name: {holder.application_name}")
        click.echo(f"  Dagster run id:   {holder.run_id or 'unknown'}")
        click.echo(f"  since:            {holder.since.isoformat() if holder.since else '?'}")
        if holder.client_addr:
            click.echo(f"  client:           {holder.client_addr}")


for command in (admin, db, backfill, ui, deliver, mentor, prune):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every expected error is one line on stderr and a non-zero exit."""
    try:
        code = cli.main(args=argv, prog_name="reminders", standalone_mode=False)
    except click.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:  # a usage error's exit_code is 2
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except RemindersError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        # A bug or an environment problem we did not foresee: still one line, and
        # the traceback for whoever asks for it.
        args = sys.argv[1:] if argv is None else argv
        if "-v" in args or "--verbose" in args:
            traceback.print_exc()
        click.echo(
            f"error: unexpected {type(exc).__name__}: {first_line(exc)} "
            "(run with -v for the traceback)",
            err=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
