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

from reminders_pipeline import settings
from reminders_pipeline.delivery.deliverer import drain_needed
from reminders_pipeline.orchestration.jobs import delivery_job, reminders_job
from reminders_pipeline.orchestration.partitions import reminder_partitions
from reminders_pipeline.orchestration.resources import (
    TRIGGER_TAG,
    RemindersDatabaseResource,
    trigger_from_tags,
)
from reminders_pipeline.settings.delivery import DELIVERY_RETRY_MINUTES

log = logging.getLogger(__name__)

BACKFILL_TAG = "dagster/backfill"
PRIORITY_TAG = "dagster/priority"
# Above the default 0 of backfill and manual runs: today's run goes first in the queue.
SCHEDULED_RUN_PRIORITY = 10

# Queued or in progress. NOT_STARTED is left out: a run created but never
# submitted stays NOT_STARTED forever and would block every tick.
BLOCKING_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
    DagsterRunStatus.SUSPENDED,
]


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
    trigger = trigger_from_tags(run.tags)
    return f"run {run.run_id} is {run.status.value} ({partition}, {trigger}, since {since})"


# The schedule's time is fixed when the code location loads (its timezone is the
# partitions'); the overlap policy is read at each tick.
SCHEDULE_HOUR, SCHEDULE_MINUTE = settings.SCHEDULE_HOUR.get(), settings.SCHEDULE_MINUTE.get()


@schedule(
    job=reminders_job,
    cron_schedule=f"{SCHEDULE_MINUTE} {SCHEDULE_HOUR} * * *",
    execution_timezone=reminder_partitions.timezone,
    name="daily_reminders_schedule",
    default_status=DefaultScheduleStatus.STOPPED,
    description=(
        f"Daily at {SCHEDULE_HOUR:02d}:{SCHEDULE_MINUTE:02d} {reminder_partitions.timezone}:"
        " that day's partition. Overlap policy (REMINDERS_OVERLAP_POLICY, read at each tick):"
        f" {settings.OVERLAP_POLICY.get()}."
    ),
)
def daily_reminders_schedule(
    context: ScheduleEvaluationContext, reminders_db: RemindersDatabaseResource
) -> RunRequest | SkipReason:
    instance = context.instance
    as_of = partition_date_for_tick(context.scheduled_execution_time, reminder_partitions.timezone)
    key = as_of.isoformat()
    if settings.OVERLAP_POLICY.get() == "skip":
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


# ------------------------------------------------------------------ delivery retries


@schedule(
    job=delivery_job,
    cron_schedule=f"*/{DELIVERY_RETRY_MINUTES.get()} * * * *",
    name="delivery_retry_schedule",
    default_status=DefaultScheduleStatus.STOPPED,
    description=(
        f"Every {DELIVERY_RETRY_MINUTES.get()} min: launches"
        f" {delivery_job.name} when deliveries are due on a configured channel (retries)"
        " or reminders wait to be expanded, and none of its runs is"
        " in progress; launches nothing otherwise."
    ),
)
def delivery_retry_schedule(
    context: ScheduleEvaluationContext, reminders_db: RemindersDatabaseResource
) -> RunRequest | SkipReason:
    blocker = blocking_run(context.instance, delivery_job.name)
    if blocker is not None:
        return SkipReason(f"run {blocker.run_id} of {delivery_job.name} is not finished yet")
    if not drain_needed(reminders_db.database()):
        return SkipReason("no delivery is due, no reminder waits to be expanded")
    return RunRequest(tags={TRIGGER_TAG: "schedule"})
