"""The daily schedule of the reminders job."""

from __future__ import annotations

import os

from dagster import DefaultScheduleStatus, build_schedule_from_partitioned_job

from reminders_pipeline.jobs import reminders_job

SCHEDULE_HOUR = int(os.environ.get("REMINDERS_SCHEDULE_HOUR", "6"))
SCHEDULE_MINUTE = int(os.environ.get("REMINDERS_SCHEDULE_MINUTE", "0"))

daily_reminders_schedule = build_schedule_from_partitioned_job(
    reminders_job,
    hour_of_day=SCHEDULE_HOUR,
    minute_of_hour=SCHEDULE_MINUTE,
    name="daily_reminders_schedule",
    default_status=DefaultScheduleStatus.STOPPED,
)
