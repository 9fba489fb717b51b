"""The Dagster code location: jobs, schedules, sensors and resources."""

from dagster import Definitions

from reminders_pipeline.jobs import reminders_job
from reminders_pipeline.schedules import daily_reminders_schedule

defs = Definitions(jobs=[reminders_job], schedules=[daily_reminders_schedule])
