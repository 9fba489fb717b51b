"""The daily follow-up reminders job."""

from __future__ import annotations

import os

from dagster import DailyPartitionsDefinition, in_process_executor, job

from reminders_pipeline.orchestration.io_manager import event_log_io_manager
from reminders_pipeline.orchestration.ops import (
    acquire_run_lock,
    dispatch_reminders,
    release_run_lock,
    select_due_assignments,
)
from reminders_pipeline.orchestration.resources import ReminderRunResource
from reminders_pipeline.settings import timezone_from_env

SINGLETON_TAG = "reminders/singleton"
# Hard stop for run monitoring (seconds); a run left STARTED by a host crash is
# failed after this, so the one-at-a-time queue cannot stay blocked.
DEFAULT_MAX_RUNTIME_S = 4 * 60 * 60

# The first as-of date with a partition (REMINDERS_PARTITIONS_START overrides it).
# A fixed date, not "today minus N days": the partition set must be the same in
# every process and on every day, or stored runs, materializations and backfills
# point at days that have left it. Recent, because the UI's Partitions tabs draw
# every partition and warn above 1,000 (about 2028-09 with this start); move it
# forward when that nears. Backfills before it need it set earlier.
DEFAULT_PARTITIONS_START = "2026-01-01"

# The partition key is the as-of date in the organisation's timezone. end_offset=1
# makes today's partition exist, so the morning schedule can request it.
reminder_partitions = DailyPartitionsDefinition(
    start_date=os.environ.get("REMINDERS_PARTITIONS_START") or DEFAULT_PARTITIONS_START,
    timezone=timezone_from_env(),
    end_offset=1,
)


@job(
    # All ops share one process, so the run lock's session lives across them.
    executor_def=in_process_executor,
    partitions_def=reminder_partitions,
    # Outputs are kept in Dagster's event log, not on the worker's disk, so a failed
    # run can be re-executed from the failed op (which then takes the lock itself)
    # by any worker, on any host or pod.
    resource_defs={"reminders": ReminderRunResource(), "io_manager": event_log_io_manager},
    tags={
        SINGLETON_TAG: "daily-follow-up",
        "dagster/max_runtime": str(
            int(os.environ.get("REMINDERS_MAX_RUNTIME_S", DEFAULT_MAX_RUNTIME_S))
        ),
    },
    description="Find assignments with no contact for too long and remind their mentors.",
)
def reminders_job() -> None:
    as_of, _skipped = acquire_run_lock()
    release_run_lock(dispatch_reminders(select_due_assignments(as_of)))
