"""The reminders job's ops: each hands the run resource to one step of ReminderRun.

Data flows one way, through the run resource alone: its ReminderRun holds the
as-of date, the run's log row and the counts, and the ops only order the steps.
Their links are `Nothing` dependencies (In(Nothing)/Out(Nothing)): an op runs
after the one before it yielded, and is skipped when it did not (the lock was
held by another run). Values reach the UI as metadata, not as inputs.
"""

from dataclasses import asdict
from typing import Any

from dagster import (
    AssetKey,
    AssetMaterialization,
    Failure,
    In,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    op,
)

from reminders_pipeline.core.dispatch import BatchProgress
from reminders_pipeline.core.runlog import RunSummary
from reminders_pipeline.delivery.config import no_channel_note
from reminders_pipeline.orchestration.resources import (
    ReminderRunResource,
    RemindersDatabaseResource,
)

OUTCOME_TAG = "reminders/outcome"
# How many reminders a successful run created (delivery_after_run_sensor reads it).
CREATED_TAG = "reminders/created"
# One partition per as-of date, materialized only by a run that created that day's
# reminders (reminders_pipeline/orchestration/assets.py): skipped and failed runs leave it missing.
DAILY_REMINDERS = AssetKey(["reminders", "daily_reminders"])
# Seconds between two progress lines of the dispatch (the last batch is always logged).
PROGRESS_EVERY_S = 5.0


@op(
    out={
        "acquired": Out(Nothing, is_required=False, description="the lock is held"),
        "skipped": Out(
            Nothing, is_required=False, description="skipped; its summary in the metadata"
        ),
    },
    description=(
        "Takes the session-level advisory lock on a dedicated connection held for the whole"
        " run and writes the 'running' row. When another run holds it: a 'skipped' row naming"
        " the holder, the run tagged reminders/outcome=skipped, and no later op runs."
    ),
)
def acquire_run_lock(context: OpExecutionContext, reminders: ReminderRunResource):
    as_of = reminders.as_of
    skipped = reminders.run.start(as_of)
    if skipped is None:
        yield Output(
            None,
            "acquired",
            metadata={
                "as_of": as_of.isoformat(),
                "lock_backend_pid": reminders.run.lock.backend_pid,
                "reminder_runs_id": reminders.run.run_row_id,
            },
        )
        return
    # A Nothing output: the summary is metadata (the event log), never a value an IO
    # manager would write to the worker's disk.
    metadata = {
        **report_skipped(context, skipped),
        "summary": MetadataValue.json(skipped.to_dict()),
    }
    yield Output(None, "skipped", metadata=metadata)


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
    skipped = reminders.run.ensure_started(reminders.as_of)
    if skipped is None:
        return True
    report_skipped(context, skipped)
    return False


@op(
    ins={"locked": In(Nothing)},
    out=Out(Nothing, is_required=False),
    description=(
        "Counts the active assignments and those due on the as-of date (no contact for their"
        " reminder interval), on the lock's session."
    ),
)
def select_due_assignments(context: OpExecutionContext, reminders: ReminderRunResource):
    if not lock_held_or_skipped(context, reminders):
        return
    selection = reminders.run.select()
    context.log.info(
        f"{selection.due} of {selection.active} active assignments due on {selection.as_of}"
    )
    yield Output(None, metadata={"due": selection.due, "active": selection.active})


@op(
    ins={"selected": In(Nothing)},
    out=Out(Nothing, is_required=False),
    description=(
        "Creates the reminders due on the as-of date in keyset batches, one commit each,"
        " INSERT ... ON CONFLICT DO NOTHING on the natural key: a reminder is never created twice."
    ),
)
def dispatch_reminders(context: OpExecutionContext, reminders: ReminderRunResource):
    if not lock_held_or_skipped(context, reminders):
        return
    # The selection's snapshot when this run made it; a re-execution that starts
    # here has none and reports batches without the total.
    active = reminders.run.selection.active if reminders.run.selection else None
    # The last batch's progress, and the last one logged.
    seen: dict[str, BatchProgress | None] = {"last": None, "logged": None}

    def log(progress: BatchProgress) -> None:
        seen["logged"] = progress
        done = min(progress.scanned, active) if active else progress.scanned
        context.log.info(
            f"batch {progress.batches}: {done}/{active if active is not None else '?'} "
            "active assignments scanned, "
            f"{progress.counts.created} reminders created, "
            f"{progress.counts.already_existed} already existed ({progress.elapsed_s:.1f}s)"
        )

    def report(progress: BatchProgress) -> None:
        # Each log line is an event written to the instance's storage before the next
        # batch starts: tens of ms on a busy machine. So a line every PROGRESS_EVERY_S
        # while the batches run, and the last batch's once they are done.
        seen["last"] = progress
        logged = seen["logged"]
        since = progress.elapsed_s - (logged.elapsed_s if logged else 0.0)
        if since >= PROGRESS_EVERY_S:
            log(progress)

    try:
        counts = reminders.run.dispatch(on_progress=report)
    finally:  # a failed dispatch too: where it got to
        if seen["last"] is not None and seen["last"] is not seen["logged"]:
            log(seen["last"])
    yield Output(None, metadata=asdict(counts))  # selected, created, already_existed


@op(
    ins={"dispatched": In(Nothing)},
    out=Out(Nothing, is_required=False),
    description=(
        "Records 'success' with the counts on the lock's session, releases the lock and"
        " reports the day's partition of reminders/daily_reminders as materialized."
    ),
)
def release_run_lock(context: OpExecutionContext, reminders: ReminderRunResource):
    if not lock_held_or_skipped(context, reminders):
        return
    summary = reminders.run.finish()
    tags = {OUTCOME_TAG: "success", CREATED_TAG: str(summary.created)}
    context.instance.add_run_tags(context.run_id, tags)
    # Only here, after 'success' is recorded: the day is done.
    yield AssetMaterialization(
        asset_key=DAILY_REMINDERS,
        partition=summary.as_of.isoformat(),
        description="The day's reminders were created.",
        metadata={
            "selected": summary.selected,
            "created": summary.created,
            "already_existed": summary.already_existed,
            "duration_s": MetadataValue.float(summary.duration_s),
            "reminder_runs_id": summary.run_row_id,
        },
    )
    metadata: dict[str, Any] = {
        "status": summary.status,
        "duration_s": MetadataValue.float(summary.duration_s),
        "created": summary.created,
    }
    if note := no_channel_note():  # the reminders exist, but nothing will send them
        context.log.warning(note)
        metadata["delivery"] = note
    yield Output(None, metadata=metadata)


# ------------------------------------------------------------------ delivery_job


@op(
    out=Out(Nothing),
    description=(
        "Expands new reminders into deliveries and sends what is due (email, webhook), per"
        " channel with bounded concurrency; counts per channel in the output's metadata."
    ),
)
def deliver_reminders(context: OpExecutionContext, reminders_db: RemindersDatabaseResource):
    # Here, not at the top: the senders' HTTP client (httpx) costs the daily run's
    # start a fifth of a second, and only this job sends anything.
    from reminders_pipeline.delivery.deliverer import drain_from_env

    report = drain_from_env(reminders_db.database())
    totals = report.totals()
    metadata = {
        **{name: MetadataValue.int(value) for name, value in totals.items()},
        "expanded": MetadataValue.int(report.expanded),
        "per channel": MetadataValue.json(report.channels),
    }
    context.log.info(f"delivery: {totals}, per channel {report.channels}")
    if note := no_channel_note():
        context.log.warning(note)
        metadata["delivery"] = MetadataValue.text(note)
    if report.problems:
        raise Failure(description="; ".join(report.problems), metadata=metadata)
    yield Output(None, metadata=metadata)
