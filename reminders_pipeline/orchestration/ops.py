"""The reminders job's ops: each hands the run resource to one step of ReminderRun."""

from datetime import date
from typing import Any

from dagster import MetadataValue, OpExecutionContext, Out, Output, op

from reminders_pipeline.core.dispatch import BatchProgress
from reminders_pipeline.core.due import DueSelection
from reminders_pipeline.core.run import RunSummary
from reminders_pipeline.core.runlog import RunCounts
from reminders_pipeline.orchestration.resources import ReminderRunResource
from reminders_pipeline.settings import ReminderSettings, parse_as_of

OUTCOME_TAG = "reminders/outcome"


def as_of_for(context: OpExecutionContext) -> date:
    """The partition key is the as-of date; an unpartitioned run means today."""
    if context.has_partition_key:
        return parse_as_of(context.partition_key)
    return ReminderSettings.from_env().today()


@op(
    out={
        "acquired": Out(date, is_required=False, description="the as-of date, lock held"),
        "skipped": Out(dict, is_required=False, description="who held the lock"),
    }
)
def acquire_run_lock(context: OpExecutionContext, reminders: ReminderRunResource):
    """Take the run lock; when another run holds it, record 'skipped' and end the run here."""
    as_of = as_of_for(context)
    skipped = reminders.run.start(as_of)
    if skipped is None:
        yield Output(
            as_of,
            "acquired",
            metadata={
                "as_of": as_of.isoformat(),
                "lock_backend_pid": reminders.run.lock.backend_pid,
                "reminder_runs_id": reminders.run.run_row_id,
            },
        )
        return
    metadata = report_skipped(context, skipped)
    yield Output(skipped.to_dict(), "skipped", metadata=metadata)


def report_skipped(context: OpExecutionContext, skipped: RunSummary) -> dict[str, Any]:
    """Tag the run as skipped, log the holder, and return it as op metadata."""
    holder = skipped.holder
    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: "skipped"})
    context.log.warning(
        f"Another run holds the reminders lock; skipping ({holder.describe() if holder else '?'})"
    )
    fields = holder.to_dict() if holder else dict.fromkeys(("pid", "application_name", "run_id"))
    return {
        **{f"holder_{key}": value for key, value in fields.items()},
        "reminder_runs_id": skipped.run_row_id,
    }


def lock_held_or_skipped(context: OpExecutionContext, reminders: ReminderRunResource) -> bool:
    """In a re-execution from failure the run starts at this op: take the lock here.

    False (and the run recorded as skipped) when another run holds it.
    """
    skipped = reminders.run.ensure_started(as_of_for(context))
    if skipped is None:
        return True
    report_skipped(context, skipped)
    return False


@op(out=Out(DueSelection, is_required=False))
def select_due_assignments(
    context: OpExecutionContext, reminders: ReminderRunResource, as_of: date
):
    if not lock_held_or_skipped(context, reminders):
        return
    selection = reminders.run.select()
    context.log.info(f"{selection.due} of {selection.active} active assignments due on {as_of}")
    yield Output(selection, metadata={"due": selection.due, "active": selection.active})


@op(out=Out(RunCounts, is_required=False))
def dispatch_reminders(
    context: OpExecutionContext, reminders: ReminderRunResource, selection: DueSelection
):
    if not lock_held_or_skipped(context, reminders):
        return

    def report(progress: BatchProgress) -> None:
        done = min(progress.scanned, selection.active) if selection.active else progress.scanned
        context.log.info(
            f"batch {progress.batches}: {done}/{selection.active} active assignments scanned, "
            f"{progress.counts.created} reminders created, "
            f"{progress.counts.already_existed} already existed ({progress.elapsed_s:.1f}s)"
        )

    counts = reminders.run.dispatch(on_progress=report)
    yield Output(
        counts,
        metadata={
            "selected": counts.selected,
            "created": counts.created,
            "already_existed": counts.already_existed,
        },
    )


@op(out=Out(is_required=False))
def release_run_lock(
    context: OpExecutionContext, reminders: ReminderRunResource, counts: RunCounts
):
    if not lock_held_or_skipped(context, reminders):
        return
    summary = reminders.run.finish()
    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: "success"})
    yield Output(
        None,
        metadata={
            "status": summary.status,
            "duration_s": MetadataValue.float(summary.duration_s),
            "created": summary.created,
        },
    )
