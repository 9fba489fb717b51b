"""Dagster resources: configuration in, services out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from dagster import (
    ConfigurableResource,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    InitResourceContext,
)
from pydantic import PrivateAttr

from reminders_pipeline import settings
from reminders_pipeline.core.run import ReminderRun
from reminders_pipeline.core.runlog import RunLog, RunSummary
from reminders_pipeline.core.sensor_reads import Row
from reminders_pipeline.core.services import build_reminder_run
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.embedded import ensure_database_url
from reminders_pipeline.db.lock_holder import APPLICATION_PREFIX, LockHolder, lock_holder
from reminders_pipeline.db.url import validate_url
from reminders_pipeline.settings import ReminderSettings, parse_as_of


@dataclass(frozen=True)
class EndedRun:
    """How a run of this process ended, as the run itself knows it."""

    summary: RunSummary
    recorded: bool  # whether its reminder_runs row says so too


# Runs that ended in this process (in-process executor), by Dagster run id: the CLI
# reports what its run knows when the database cannot tell (orchestration/launch.py).
ENDED_IN_THIS_PROCESS: dict[str, EndedRun] = {}


# What launched a run, as its launcher tags it (`reminders run`: cli, the schedules:
# schedule); Dagster's own backfill, schedule and sensor tags win (trigger_from_tags).
TRIGGER_TAG = "reminders/trigger"


def trigger_from_tags(tags: dict[str, str]) -> str:
    """The trigger a run records in reminder_runs, from its Dagster tags."""
    if "dagster/backfill" in tags:
        return "backfill"
    if "dagster/schedule_name" in tags:
        return "schedule"
    if "dagster/sensor_name" in tags:
        return "sensor"
    return tags.get(TRIGGER_TAG, "manual")


def dagster_stop_cause(instance: DagsterInstance, run_id: str) -> Callable[[str], str]:
    """Name who stopped the run: Dagster terminates a run (from the UI, or run
    monitoring past dagster/max_runtime) by sending SIGINT to its process, and
    records why in the run's RUN_CANCELING events."""

    def describe(reason: str) -> str:
        try:
            run = instance.get_run_by_id(run_id)
            # Run monitoring marks the run failed as soon as its terminate call
            # returns, possibly before this process gets here.
            if run is None or run.status not in (
                DagsterRunStatus.CANCELING,
                DagsterRunStatus.CANCELED,
                DagsterRunStatus.FAILURE,
            ):
                return reason
            records = instance.all_logs(run_id, of_type=DagsterEventType.RUN_CANCELING)
            messages = [
                r.dagster_event.message
                for r in records
                if r.dagster_event is not None and r.dagster_event.message
            ]
            if not messages:
                return reason
            return (
                f"{reason}: Dagster is terminating the run ({'; '.join(dict.fromkeys(messages))})"
            )
        except Exception:  # the cause is a nicety; the signal name is already the answer
            return reason

    return describe


class _DatabaseUrlResource(ConfigurableResource):
    database_url: str | None = None

    def resolved_database_url(self) -> str:
        """The configured database_url; otherwise the environment's
        (ensure_database_url: the embedded server is started when none is set)."""
        if self.database_url:
            return validate_url(self.database_url, "the resource's database_url")
        return ensure_database_url()


class ReminderRunResource(_DatabaseUrlResource):
    """The run's ReminderRun, with its lock connection open exactly as long as the run.

    Run-scoped: with the in-process executor it is set up once before the first
    op and torn down after the last, even when an op fails or later ops are
    skipped, so teardown is where the lock is released on every path.
    """

    default_interval_days: int | None = None
    max_reminders_per_silence: int | None = None
    batch_size: int | None = None

    _run: ReminderRun | None = PrivateAttr(default=None)

    def settings(self) -> ReminderSettings:
        """The environment's settings, overridden by this resource's config where given."""
        bounds = {  # each field's setting, whose bounds the config is held to
            "default_interval_days": settings.DEFAULT_INTERVAL_DAYS,
            "max_reminders_per_silence": settings.MAX_PER_SILENCE,
            "batch_size": settings.BATCH_SIZE,
        }
        overrides = {
            field: setting.check(value, f"resource config {field}")
            for field, setting in bounds.items()
            if (value := getattr(self, field)) is not None
        }
        return replace(ReminderSettings.from_env(), **overrides)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        tags = dict(context.dagster_run.tags) if context.dagster_run else {}
        self._run = build_reminder_run(
            self.resolved_database_url(),
            self.settings(),
            dagster_run_id=context.run_id,
            trigger=trigger_from_tags(tags),
        )
        partition = tags.get("dagster/partition")
        self._run.planned_as_of = (
            parse_as_of(partition) if partition else ReminderSettings.from_env().today()
        )
        if context.instance is not None:
            self._run.describe_stop = dagster_stop_cause(context.instance, context.run_id)
        self._run.watch_signals_between_steps()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._run is not None:
            try:
                self._run.close()
            finally:
                if self._run.summary is not None:
                    ENDED_IN_THIS_PROCESS[context.run_id] = EndedRun(
                        self._run.summary, self._run.outcome_recorded
                    )

    @property
    def as_of(self) -> date:
        """The run's day, fixed at set-up: its partition's, or today when unpartitioned."""
        assert self.run.planned_as_of is not None  # set with the run
        return self.run.planned_as_of

    @property
    def run(self) -> ReminderRun:
        if self._run is None:
            raise RuntimeError("ReminderRunResource used outside a run")
        return self._run


class RemindersDatabaseResource(_DatabaseUrlResource):
    """The reminders database for schedules and sensors; what sensors read (core/sensor_reads.py).

    Short connections per call, the URL resolved at each, so a sensor that cannot
    resolve it reports it like any other failed read; never takes the run lock.
    """

    def database(self) -> Database:
        return Database(self.resolved_database_url())

    def runlog(self) -> RunLog:
        return RunLog(self.database())

    def lock_holder(self) -> LockHolder | None:
        return lock_holder(self.resolved_database_url())

    def latest_runs(self, limit: int) -> list[Row]:
        return self.runlog().recent(limit=limit)

    def runs_of(self, dagster_run_id: str) -> list[Row]:
        return self.runlog().for_dagster_run(dagster_run_id)

    def running_started_before(self, older_than_s: float) -> list[Row]:
        return self.runlog().running_started_before(older_than_s)

    def delivery_health(self, after_finished_at: str | None, after_dead_id: int) -> Row:
        row = self.database().fetch_one(
            "delivery_health", after_finished_at=after_finished_at, after_dead_id=after_dead_id
        )
        assert row is not None  # one row always: the query selects from (SELECT 1)
        return row

    def live_run_ids(self) -> set[str]:
        rows = self.database().fetch_all("live_run_sessions", prefix=APPLICATION_PREFIX)
        return {r["run_id"] for r in rows}
