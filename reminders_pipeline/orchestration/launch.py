"""Launch the reminders job through Dagster's real execution path, outside the daemon."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no cross-process guard, first use must not race
    fcntl = None  # type: ignore[assignment]

from dagster import DagsterInstance, execute_job, reconstructable

from reminders_pipeline import settings
from reminders_pipeline.core.runlog import RunLog, RunSummary
from reminders_pipeline.db.connector import Database
from reminders_pipeline.errors import ConfigError
from reminders_pipeline.orchestration.definitions import resolved_reminders_job
from reminders_pipeline.orchestration.jobs import reminder_partitions


def dagster_instance() -> DagsterInstance:
    """DAGSTER_HOME's instance; without it, a persistent local one under REMINDERS_HOME."""
    if not settings.dagster_home():
        home = settings.embedded_home() / "dagster"
        home.mkdir(parents=True, exist_ok=True)
        config = home / "dagster.yaml"
        if not config.exists():
            config.write_text("telemetry:\n  enabled: false\n")
        settings.use_dagster_home(Path(home).resolve())
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
            tags={"dagster/partition": key, "reminders/trigger": trigger},
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
    rows = RunLog(Database(url)).for_dagster_run(result.run_id)
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_failure and e.event_specific_data]
        for event in failures:
            err = getattr(event.event_specific_data, "error", None)
            if err is not None:
                error = err.message.strip()
                break
    if not rows:  # the run failed before it could log itself
        status = "success" if result.success else "failed"
        return RunSummary(
            status, as_of, result.run_id, None, error=error if not result.success else None
        )
    summary = RunSummary.from_row(rows[0])
    if summary.status == "failed":
        return summary  # the log's error names the step's problem
    return replace(summary, error=error if summary.status != "success" else None)
