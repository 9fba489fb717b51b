"""`reminders backfill`: Dagster's own backfill of the job's days, on the CLI's instance."""

from __future__ import annotations

import re
import subprocess

import click

from reminders_pipeline.cli.common import dagster_command
from reminders_pipeline.db.embedded import ensure_database_url
from reminders_pipeline.errors import ConfigError, RemindersError
from reminders_pipeline.settings import ReminderSettings, parse_as_of

# A backfill loads the code location in the child process: bounded, but generous on
# a busy machine (it imports Dagster and the project, then queues one run per day).
BACKFILL_TIMEOUT_S = 300


@click.command()
@click.option("--from", "since", required=True, help="First day (YYYY-MM-DD).")
@click.option("--to", "until", help="Last day (YYYY-MM-DD); default today.")
@click.option(
    "--missing",
    "only_missing",
    is_flag=True,
    help="Only the days not done (what `reminders missing` lists), skipped days included.",
)
def backfill(since: str, until: str | None, only_missing: bool) -> None:
    """Queue one run per day, as a Dagster backfill (the UI's Backfills tab shows it).

    The Dagster home is DAGSTER_HOME or the CLI's own (REMINDERS_HOME/dagster), as
    for `reminders ui`. The runs carry the partition tags a UI backfill gives them
    and wait in the run queue: the daemon (`reminders ui`, or the deployment's)
    starts them one at a time. A day that was done creates nothing again.
    """
    from dagster import PartitionKeyRange

    from reminders_pipeline.orchestration.dagster_home import (
        dagster_instance,
        default_dagster_home,
    )
    from reminders_pipeline.orchestration.jobs import reminders_job
    from reminders_pipeline.orchestration.partitions import (
        check_partition,
        missing_days,
        reminder_partitions,
    )

    first = parse_as_of(since, "--from")
    last = parse_as_of(until, "--to") if until else ReminderSettings.from_env().today()
    if first > last:
        raise ConfigError(f"--from {first} is after --to {last}")
    every_day = PartitionKeyRange(check_partition(first), check_partition(last))
    with dagster_instance() as instance:  # prepares the CLI's home when DAGSTER_HOME is unset
        days = (
            missing_days(instance, first, last)
            if only_missing
            else reminder_partitions.get_partition_keys_in_range(every_day)
        )
    if not days:
        click.echo(f"nothing to backfill: every day from {first} to {last} is done")
        return
    argv, env = dagster_command(default_dagster_home(), ensure_database_url(), "job", "backfill")
    argv += ["-j", reminders_job.name, "--noprompt", "--partitions", ",".join(days)]
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=BACKFILL_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise RemindersError(f"dagster job backfill took over {BACKFILL_TIMEOUT_S}s") from exc
    launched = re.search(r"Launched backfill job `([^`]+)`", done.stdout)
    if done.returncode != 0 or launched is None:
        lines = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
        raise RemindersError(f"dagster job backfill exited {done.returncode}: {lines[-1]}")
    click.echo(
        f"backfill {launched.group(1)}: {len(days)} run(s) queued, {days[0]} to {days[-1]}; "
        "the Dagster daemon (`reminders ui`, or the deployment's) starts them one at a time"
    )
