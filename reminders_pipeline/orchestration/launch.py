"""Launch the reminders job through Dagster's real execution path, outside the daemon."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from importlib import resources
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no cross-process guard, first use must not race
    fcntl = None  # type: ignore[assignment]

import os
from typing import Any

import backoff
from dagster import DagsterInstance, execute_job, reconstructable
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

from reminders_pipeline import settings
from reminders_pipeline.core.runlog import RunLog, RunSummary
from reminders_pipeline.core.stop_signals import early_stop_reason
from reminders_pipeline.db.run_sessions import watched_database
from reminders_pipeline.errors import (
    ConfigError,
    ConnectionLost,
    DatabaseUnavailable,
    RemindersError,
    first_line,
)
from reminders_pipeline.orchestration.definitions import resolved_reminders_job
from reminders_pipeline.orchestration.jobs import reminder_partitions, reminders_job
from reminders_pipeline.orchestration.ops import DAILY_REMINDERS
from reminders_pipeline.orchestration.resources import ENDED_IN_THIS_PROCESS

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

# The first line of a dagster.yaml this package manages (instance/dagster.yaml).
MANAGED_MARKER = "# managed by reminders_pipeline"
# What earlier versions wrote into the CLI's home: telemetry only, no run queue.
LEGACY_CONFIG = "telemetry:\n  enabled: false\n"


def shipped_instance_yaml() -> str:
    """The instance settings shipped with the package (queue limit, run monitoring)."""
    return resources.files("reminders_pipeline.instance").joinpath("dagster.yaml").read_text()


def prepare_dagster_home(home: Path) -> str:
    """Make home/dagster.yaml carry the shipped instance settings; says what it did.

    Written when absent, refreshed while it is ours (the marker line, or the
    telemetry-only file earlier versions wrote); an operator's own file is kept.
    """
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    shipped = shipped_instance_yaml()
    with _first_use_guard(home):
        current = config.read_text() if config.exists() else None
        if current == shipped:
            return f"{config}: the shipped instance settings"
        if current is not None and not (
            current.startswith(MANAGED_MARKER) or current == LEGACY_CONFIG
        ):
            return f"{config}: kept as is (not written by reminders_pipeline)"
        partial = config.with_name(f".dagster.yaml.{os.getpid()}")
        partial.write_text(shipped)
        partial.replace(config)  # atomic: a starting process never reads half a file
        return f"{config}: {'written' if current is None else 'refreshed'} from the package"


def default_dagster_home() -> Path:
    """DAGSTER_HOME, or the persistent local home under REMINDERS_HOME."""
    return Path(settings.dagster_home() or settings.embedded_home() / "dagster").resolve()


def dagster_instance() -> DagsterInstance:
    """DAGSTER_HOME's instance; without it, a persistent local one under REMINDERS_HOME
    with the shipped instance settings (the same the UI runs with: `reminders ui`)."""
    if not settings.dagster_home():
        home = default_dagster_home()
        prepare_dagster_home(home)
        settings.use_dagster_home(home)
    with _first_use_guard(Path(settings.dagster_home() or ".")):
        instance = DagsterInstance.get()
        # Touch each storage under the guard: SQLite storage creates its schema on
        # first use, and two processes doing that at once fail ("table runs already
        # exists"), which would leave an invocation without any record.
        instance.get_runs_count()
        _ = instance.event_log_storage, instance.schedule_storage
    return instance


@contextmanager
def _first_use_guard(home: Path) -> Iterator[None]:
    """Serialise instance creation across processes sharing one DAGSTER_HOME."""
    if fcntl is None or not home.is_dir():
        yield
        return
    with open(home / ".reminders-instance.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def missing_days(instance: DagsterInstance, first: date, last: date) -> list[str]:
    """The days from first to last (partitions only) whose reminders were never created:
    no materialization of reminders/daily_reminders, whatever their runs' statuses."""
    done = instance.get_materialized_partitions(DAILY_REMINDERS)
    return [
        key
        for key in reminder_partitions.get_partition_keys()
        if first.isoformat() <= key <= last.isoformat() and key not in done
    ]


def check_partition(as_of: date) -> str:
    key = as_of.isoformat()
    keys = reminder_partitions.get_partition_keys()
    if key not in keys:
        raise ConfigError(
            f"no daily partition for {key}: as-of dates run from {keys[0]} to {keys[-1]} "
            f"(today in {reminder_partitions.timezone})"
        )
    return key


def run_reminders_job(
    url: str, as_of: date, trigger: str = "cli", log_level: str = "INFO"
) -> RunSummary:
    """Execute one run of the job (the definition the schedule launches) and summarise it."""
    key = check_partition(as_of)
    with dagster_instance() as instance:
        result = execute_job(
            reconstructable(resolved_reminders_job),
            instance=instance,
            tags={**UI_LAUNCH_TAGS, "dagster/partition": key, "reminders/trigger": trigger},
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
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, f"lost the database connection: {first}"
    return (rows[0] if rows else None), None
