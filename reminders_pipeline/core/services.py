"""Build the services of one run from a database URL and settings (no Dagster here)."""

from __future__ import annotations

from reminders_pipeline.core.dispatch import ReminderDispatchService
from reminders_pipeline.core.due import ReminderSchedulerService
from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.core.run import ReminderRun
from reminders_pipeline.core.runlog import RunLog
from reminders_pipeline.db.connector import Database
from reminders_pipeline.settings import ReminderSettings


def build_reminder_run(
    url: str,
    settings: ReminderSettings,
    *,
    dagster_run_id: str | None = None,
    trigger: str = "manual",
) -> ReminderRun:
    db = Database(url)
    return ReminderRun(
        lock=RunLock(url, dagster_run_id),
        runlog=RunLog(db),
        scheduler=ReminderSchedulerService(db, settings),
        dispatcher=ReminderDispatchService(db, settings),
        dagster_run_id=dagster_run_id,
        trigger=trigger,
    )
