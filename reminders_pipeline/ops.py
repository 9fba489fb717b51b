"""The reminders job's ops: each hands the run resource to one step of ReminderRun."""

from datetime import date

from dagster import MetadataValue, OpExecutionContext, Out, Output, op

from reminders_pipeline.dispatch import BatchProgress
from reminders_pipeline.resources import ReminderRunResource
from reminders_pipeline.runlog import RunCounts
from reminders_pipeline.scheduler import DueSelection
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
    holder = skipped.holder
    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: "skipped"})
    context.log.warning(
        f"Another run holds the reminders lock; skipping ({holder.describe() if holder else '?'})"
    )
    yield Output(
        {"holder": holder.describe() if holder else None},
        "skipped",
        metadata={
            "holder_pid": holder.pid if holder else None,
            "holder_application_name": holder.application_name if holder else None,
            "holder_run_id": holder.run_id if holder else None,
            "holder_since": holder.since.isoformat() if holder and holder.since else None,
            "reminder_runs_id": skipped.run_row_id,
        },
    )


@op
def select_due_assignments(
    context: OpExecutionContext, reminders: ReminderRunResource, as_of: date
) -> Output[DueSelection]:
    selection = reminders.run.select()
    context.log.info(f"{selection.due} of {selection.active} active assignments due on {as_of}")
    return Output(selection, metadata={"due": selection.due, "active": selection.active})


@op
def dispatch_reminders(
    context: OpExecutionContext, reminders: ReminderRunResource, selection: DueSelection
) -> Output[RunCounts]:
    def report(progress: BatchProgress) -> None:
        done = min(progress.scanned, selection.active) if selection.active else progress.scanned
        context.log.info(
            f"batch {progress.batches}: {done}/{selection.active} active assignments scanned, "
            f"{progress.counts.created} reminders created, "
            f"{progress.counts.already_existed} already existed ({progress.elapsed_s:.1f}s)"
        )

    counts = reminders.run.dispatch(on_progress=report)
    return Output(
        counts,
        metadata={
            "selected": counts.selected,
            "created": counts.created,
            "already_existed": counts.already_existed,
        },
    )


@op
def release_run_lock(
    context: OpExecutionContext, reminders: ReminderRunResource, counts: RunCounts
) -> Output[None]:
    summary = reminders.run.finish()
    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: "success"})
    return Output(
        None,
        metadata={
            "status": summary.status,
            "duration_s": MetadataValue.float(summary.duration_s),
            "created": counts.created,
        },
    )
