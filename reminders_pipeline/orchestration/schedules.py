"""The daily schedule of the reminders job, with its overlap policy.

Each tick requests that day's partition (the date in the organisation's timezone)
with run_key = partition key, so a tick never launches the same day twice.

Overlap policy (REMINDERS_OVERLAP_POLICY, docs/decisions/overlap-policy.md):
- `skip` (default): when a run of the job is queued or in progress, the tick
  launches nothing. It returns a SkipReason naming the blocking run (the UI's tick
  history) and writes a 'skipped' row with the same reason to reminder_runs.
  Nothing is lost: the next run creates the latest reminder due per assignment.
- `queue`: the tick's run always launches and waits in the run queue.
Backfill runs never make a tick skip: the tick's run carries a higher
dagster/priority, so it is dequeued ahead of the backfill's remaining partitions.
"""

import logging
import os
from datetime import date, datetime
from zoneinfo import ZoneInfo

from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultScheduleStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from reminders_pipeline.errors import ConfigError
from reminders_pipeline.orchestration.jobs import reminder_partitions, reminders_job
from reminders_pipeline.orchestration.resources import RemindersDatabaseResource
from reminders_pipeline.settings import timezone_from_env

log = logging.getLogger(__name__)

OVERLAP_POLICIES = ("skip", "queue")
BACKFILL_TAG = "dagster/backfill"
PRIORITY_TAG = "dagster/priority"
# Above the default 0 of backfill and manual runs: today's run goes first in the queue.
SCHEDULED_RUN_PRIORITY = 10
TRIGGER_TAG = "reminders/trigger"

# Queued or in progress. NOT_STARTED is left out: a run created but never
# submitted stays NOT_STARTED forever and would block every tick.
BLOCKING_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
    DagsterRunStatus.SUSPENDED,
]


def env_int(name: str, default: int, lowest: int, highest: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not lowest <= value <= highest:
        raise ConfigError(f"{name} must be between {lowest} and {highest}, got {value}")
    return value


def overlap_policy_from_env() -> str:
    policy = (os.environ.get("REMINDERS_OVERLAP_POLICY") or "skip").strip().lower()
    if policy not in OVERLAP_POLICIES:
        raise ConfigError(f"REMINDERS_OVERLAP_POLICY must be one of {OVERLAP_POLICIES}: {policy!r}")
    return policy


SCHEDULE_HOUR = env_int("REMINDERS_SCHEDULE_HOUR", 6, 0, 23)
SCHEDULE_MINUTE = env_int("REMINDERS_SCHEDULE_MINUTE", 0, 0, 59)
SCHEDULE_TIMEZONE = timezone_from_env()
OVERLAP_POLICY = overlap_policy_from_env()


def partition_date_for_tick(tick_time: datetime | None, timezone: str) -> date:
    """The tick's date in the organisation's timezone (a naive time is taken as local)."""
    zone = ZoneInfo(timezone)
    if tick_time is None:
        return datetime.now(zone).date()
    if tick_time.tzinfo is None:
        return tick_time.date()
    return tick_time.astimezone(zone).date()


def blocking_run(instance: DagsterInstance, job_name: str) -> DagsterRun | None:
    """The oldest queued or in-progress run of the job that is not part of a backfill."""
    runs = instance.get_runs(filters=RunsFilter(job_name=job_name, statuses=BLOCKING_STATUSES))
    runs = [run for run in runs if BACKFILL_TAG not in run.tags]
    return runs[-1] if runs else None  # get_runs is newest first


def describe_run(instance: DagsterInstance, run: DagsterRun) -> str:
    record = instance.get_run_record_by_id(run.run_id)
    moment = (record.start_time or record.create_timestamp.timestamp()) if record else None
    since = (
        datetime.fromtimestamp(moment).astimezone().isoformat(timespec="seconds") if moment else "?"
    )
    partition = run.tags.get("dagster/partition", "no partition")
    trigger = run.tags.get(TRIGGER_TAG) or (
        "schedule" if "dagster/schedule_name" in run.tags else "manual"
    )
    return f"run {run.run_id} is {run.status.value} ({partition}, {trigger}, since {since})"


def evaluate_tick(
    instance: DagsterInstance,
    tick_time: datetime | None,
    policy: str,
    timezone: str,
    reminders_db: RemindersDatabaseResource,
) -> RunRequest | SkipReason:
    as_of = partition_date_for_tick(tick_time, timezone)
    key = as_of.isoformat()
    if policy == "skip":
        blocker = blocking_run(instance, reminders_job.name)
        if blocker is not None:
            reason = (
                f"Skipped the reminders run for {key}: {describe_run(instance, blocker)}; "
                "overlap policy 'skip' (the next run creates the latest reminder due)"
            )
            try:
                row_id = reminders_db.runlog().tick_skipped(
                    as_of, reason, blocking_run_id=blocker.run_id
                )
                reason += f" [reminder_runs {row_id}]"
            except Exception as exc:  # the tick's story must reach the UI even so
                log.exception("could not write the skipped tick to reminder_runs")
                reason += f" [not written to reminder_runs: {type(exc).__name__}: {exc}]"
            return SkipReason(reason)
    return RunRequest(
        run_key=key,
        partition_key=key,
        tags={TRIGGER_TAG: "schedule", PRIORITY_TAG: str(SCHEDULED_RUN_PRIORITY)},
    )


@schedule(
    job=reminders_job,
    cron_schedule=f"{SCHEDULE_MINUTE} {SCHEDULE_HOUR} * * *",
    execution_timezone=SCHEDULE_TIMEZONE,
    name="daily_reminders_schedule",
    default_status=DefaultScheduleStatus.STOPPED,
    description=(
        f"Daily at {SCHEDULE_HOUR:02d}:{SCHEDULE_MINUTE:02d} {SCHEDULE_TIMEZONE}: that day's "
        f"partition. Overlap policy: {OVERLAP_POLICY}."
    ),
)
def daily_reminders_schedule(
    context: ScheduleEvaluationContext, reminders_db: RemindersDatabaseResource
) -> RunRequest | SkipReason:
    return evaluate_tick(
        context.instance,
        context.scheduled_execution_time,
        OVERLAP_POLICY,
        reminder_partitions.timezone or SCHEDULE_TIMEZONE,
        reminders_db,
    )
