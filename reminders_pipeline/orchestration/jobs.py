"""The jobs: the daily follow-up reminders, and the delivery of what they created."""

from __future__ import annotations

from dagster import HookContext, HookDefinition, failure_hook, in_process_executor, job

from reminders_pipeline import settings
from reminders_pipeline.alerts.messages import next_step_after_failure
from reminders_pipeline.orchestration.ops import (
    acquire_run_lock,
    deliver_reminders,
    dispatch_reminders,
    release_run_lock,
    select_due_assignments,
)
from reminders_pipeline.orchestration.partitions import reminder_partitions
from reminders_pipeline.settings.delivery import DELIVERY_MAX_RUNTIME_S

SINGLETON_TAG = "reminders/singleton"


def next_step_on_failure(delivery: bool) -> HookDefinition:
    """A hook that logs, in the failed step's run log, what to do next (as the failure
    alert says it)."""

    @failure_hook(name="delivery_next_step" if delivery else "reminders_next_step")
    def log_next_step(context: HookContext) -> None:
        run = context.instance.get_run_by_id(context.run_id)
        partition = run.tags.get("dagster/partition") if run else None
        context.log.error(f"Next: {next_step_after_failure(delivery, partition)}")

    return log_next_step


@job(
    # All ops share one process, so the run lock's session lives across them.
    executor_def=in_process_executor,
    partitions_def=reminder_partitions,
    # The ops pass nothing but ordering (Nothing dependencies), so a failed run can
    # be re-executed from the failed op with nothing to load (it takes the lock itself).
    # Every output is Nothing, so no IO manager writes to the worker's disk. Its
    # resources ("reminders", ReminderRunResource) are bound in definitions.py.
    tags={
        SINGLETON_TAG: "daily-follow-up",
        # Hard stop for run monitoring: a run left STARTED by a host crash is failed
        # after it, so the one-at-a-time queue cannot stay blocked.
        "dagster/max_runtime": str(settings.MAX_RUNTIME_S.get()),
    },
    description="Find assignments with no contact for too long and remind their mentors.",
    hooks={next_step_on_failure(delivery=False)},
)
def reminders_job() -> None:
    locked, _skipped = acquire_run_lock()
    release_run_lock(dispatch_reminders(select_due_assignments(locked)))


# The delivery job never takes the run lock and carries none of the daily job's
# queue tags (SINGLETON_TAG): it never waits for, nor blocks, a daily run. Run
# monitoring's hard stop: the drain stops claiming at REMINDERS_DELIVERY_MAX_RUNTIME_S,
# and each send under way then ends at its own deadline (REMINDERS_DELIVERY_TIMEOUT_S).
DELIVERY_MAX_RUNTIME_MARGIN_S = 300


@job(
    executor_def=in_process_executor,
    tags={"dagster/max_runtime": str(DELIVERY_MAX_RUNTIME_S.get() + DELIVERY_MAX_RUNTIME_MARGIN_S)},
    description="Send the reminders due for email and webhook (never takes the run lock).",
    hooks={next_step_on_failure(delivery=True)},
)
def delivery_job() -> None:
    deliver_reminders()
