"""Build the services of one run from a database URL and settings (no Dagster here)."""

from __future__ import annotations

from reminders_pipeline.core.dispatch import ReminderDispatchService
from reminders_pipeline.core.due import ReminderSchedulerService
from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.core.run import ReminderRun
from reminders_pipeline.core.runlog import RunLog
from reminders_pipeline.db.run_sessions import RunDatabase, RunSessions
from reminders_pipeline.settings import ReminderSettings
from reminders_pipeline.settings.liveness import LivenessSettings


def build_reminder_run(
    url: str,
    settings: ReminderSettings,
    *,
    dagster_run_id: str | None = None,
    trigger: str = "manual",
) -> ReminderRun:
    # Every session of the run is bounded and watched (db/run_sessions.py).
    sessions = RunSessions(url, LivenessSettings.from_env())
    db = RunDatabase(sessions)
    return ReminderRun(
        lock=RunLock(url, dagster_run_id, sessions),
        runlog=RunLog(db, record_retry_s=sessions.liveness.record_retry_s),
        scheduler=ReminderSchedulerService(db, settings),
        dispatcher=ReminderDispatchService(db, settings),
        dagster_run_id=dagster_run_id,
        trigger=trigger,
        watch=sessions,
    )
