"""Run one reminders job through Dagster's real execution path, outside the daemon, and
summarise it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import backoff
from dagster import execute_job, reconstructable
from dagster._core.definitions.repository_definition.valid_definitions import (
    SINGLETON_REPOSITORY_NAME,
)
from dagster._core.remote_representation.external_data import (
    partition_set_snap_name_for_job_name,
)
from dagster._core.storage.tags import (
    CODE_LOCATION_TAG,
    PARTITION_SET_TAG,
    REPOSITORY_LABEL_TAG,
)

from reminders_pipeline.core.runlog import RunLog, RunSummary
from reminders_pipeline.core.stop_signals import early_stop_reason
from reminders_pipeline.db.run_sessions import watched_database
from reminders_pipeline.errors import (
    ConnectionLost,
    DatabaseUnavailable,
    RemindersError,
    first_line,
)
from reminders_pipeline.orchestration.dagster_home import dagster_instance
from reminders_pipeline.orchestration.definitions import resolved_reminders_job
from reminders_pipeline.orchestration.jobs import reminders_job
from reminders_pipeline.orchestration.partitions import check_partition
from reminders_pipeline.orchestration.resources import ENDED_IN_THIS_PROCESS, TRIGGER_TAG

# The code location's name in every workspace (workspace.yaml, workspace.grpc.yaml,
# `reminders ui`'s, the code server's --location-name).
CODE_LOCATION = "reminders_pipeline"
# The tags a UI, schedule or backfill launch gives a partitioned run of the job: the
# job's Partitions page counts a run only with the partition set and the code
# location as "repository@location"; the Runs list filters on dagster/code_location.
# A CLI run carries them too.
UI_LAUNCH_TAGS = {
    CODE_LOCATION_TAG: CODE_LOCATION,
    PARTITION_SET_TAG: partition_set_snap_name_for_job_name(reminders_job.name),
    REPOSITORY_LABEL_TAG: f"{SINGLETON_REPOSITORY_NAME}@{CODE_LOCATION}",
}


def run_reminders_job(
    url: str, as_of: date, trigger: str = "cli", log_level: str = "INFO"
) -> RunSummary:
    """Execute one run of the job (the definition the schedule launches) and summarise it."""
    key = check_partition(as_of)
    with dagster_instance() as instance:
        result = execute_job(
            reconstructable(resolved_reminders_job),
            instance=instance,
            tags={**UI_LAUNCH_TAGS, "dagster/partition": key, TRIGGER_TAG: trigger},
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
    ended = ENDED_IN_THIS_PROCESS.pop(result.run_id, None)
    if ended is not None and not ended.recorded:
        # The database did not take the run's outcome (it stayed away past the retry
        # bound): the run's own account, counts committed and row id included, is the truth.
        return ended.summary
    row, lookup_error = _run_row(url, result.run_id)
    if row is None and ended is not None:
        return ended.summary  # recorded, but unreadable now: the run's account is the same
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_failure and e.event_specific_data]
        for event in failures:
            err = getattr(event.event_specific_data, "error", None)
            if err is not None:
                error = err.message.strip()
                break
    if row is None:
        if lookup_error is not None:
            # The run's own record is out of reach: say so, with what Dagster saw.
            error = f"{lookup_error}; the run's outcome could not be read" + (
                f" (Dagster: {error})" if error else ""
            )
            return RunSummary("failed", as_of, result.run_id, None, error=error)
        if result.success:
            return RunSummary("success", as_of, result.run_id, None)
        # The run failed before it could log itself (a signal while Dagster set up its
        # resources, say): every invocation leaves a row, so log it here.
        return _log_unstarted_run(url, as_of, result.run_id, trigger, error)
    summary = RunSummary.from_row(row)
    if summary.status == "failed":
        return summary  # the log's error names the step's problem
    return replace(summary, error=error if summary.status != "success" else None)


def _log_unstarted_run(
    url: str, as_of: date, run_id: str, trigger: str, error: str | None
) -> RunSummary:
    reason = early_stop_reason() or error or "the run failed before it started"
    try:
        with watched_database(url) as db:
            row_id = RunLog(db).failed_before_start(as_of, run_id, trigger, reason)
    except RemindersError as exc:
        row_id, reason = None, f"{reason}; no row could be written for it ({first_line(exc)})"
    return RunSummary("failed", as_of, run_id, row_id, error=reason)


# After a run, its row is read back; a database that is restarting gets a while.
ROW_LOOKUP_RETRY_S = 30.0


def _run_row(url: str, dagster_run_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The run's reminder_runs row, or why it cannot be read (the database is gone)."""

    @backoff.on_exception(
        backoff.expo,
        (DatabaseUnavailable, ConnectionLost),
        max_time=ROW_LOOKUP_RETRY_S,
        max_value=5,
        logger=None,
    )
    def lookup() -> list[dict[str, Any]]:
        with watched_database(url) as db:  # a silent server cannot hold the summary back
            return RunLog(db).for_dagster_run(dagster_run_id)

    try:
        rows = lookup()
    except (DatabaseUnavailable, ConnectionLost) as exc:
        return None, f"lost the database connection: {first_line(exc)}"
    return (rows[0] if rows else None), None
