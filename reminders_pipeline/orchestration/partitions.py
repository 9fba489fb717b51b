"""The job's daily partitions: one per as-of date, and which of them are done."""

from __future__ import annotations

from datetime import date

from dagster import DagsterInstance, DailyPartitionsDefinition

from reminders_pipeline import settings
from reminders_pipeline.errors import ConfigError
from reminders_pipeline.orchestration.ops import DAILY_REMINDERS

# The partition key is the as-of date in the organisation's timezone. end_offset=1
# makes today's partition exist, so the morning schedule can request it. The start
# (REMINDERS_PARTITIONS_START) is a fixed date, not "today minus N days": the
# partition set must be the same in every process and on every day (settings/).
reminder_partitions = DailyPartitionsDefinition(
    start_date=settings.PARTITIONS_START.get(),
    timezone=settings.TIMEZONE.get(),
    end_offset=1,
)


def check_partition(as_of: date) -> str:
    """The as-of date's partition key; a ConfigError naming the range when it has none."""
    key = as_of.isoformat()
    keys = reminder_partitions.get_partition_keys()
    if key not in keys:
        raise ConfigError(
            f"no daily partition for {key}: as-of dates run from {keys[0]} to {keys[-1]} "
            f"(today in {reminder_partitions.timezone})"
        )
    return key


def missing_days(instance: DagsterInstance, first: date, last: date) -> list[str]:
    """The days from first to last (partitions only) whose reminders were never created:
    no materialization of reminders/daily_reminders, whatever their runs' statuses."""
    done = instance.get_materialized_partitions(DAILY_REMINDERS)
    return [
        key
        for key in reminder_partitions.get_partition_keys()
        if first.isoformat() <= key <= last.isoformat() and key not in done
    ]
