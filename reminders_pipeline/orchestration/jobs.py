"""The daily follow-up reminders job."""

from __future__ import annotations

import os

from dagster import DailyPartitionsDefinition, in_process_executor, job

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

# The partition key is the as-of date in the organisation's timezone. end_offset=1
# makes today's partition exist, so the morning schedule can request it.
reminder_partitions = DailyPartitionsDefinition(
    start_date=os.environ.get("REMINDERS_PARTITIONS_START", "2024-01-01"),
    timezone=timezone_from_env(),
    end_offset=1,
)


@job(
    # All ops share one process, so the run lock's session lives across them.
    executor_def=in_process_executor,
    partitions_def=reminder_partitions,
    # Outputs go to the default filesystem IO manager, so a failed run can be
    # re-executed from the failed op (which then takes the lock itself).
    resource_defs={"reminders": ReminderRunResource()},
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
