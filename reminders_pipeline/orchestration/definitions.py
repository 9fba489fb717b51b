"""The Dagster code location: jobs, schedules, sensors, and the one place resources are bound."""

from dagster import Definitions, JobDefinition

from reminders_pipeline.db.url import require_database_url_in_production
from reminders_pipeline.orchestration.alert_resource import alert_resource_from_env
from reminders_pipeline.orchestration.assets import daily_reminders
from reminders_pipeline.orchestration.jobs import delivery_job, reminders_job
from reminders_pipeline.orchestration.resources import (
    ReminderRunResource,
    RemindersDatabaseResource,
)
from reminders_pipeline.orchestration.schedules import (
    daily_reminders_schedule,
    delivery_retry_schedule,
)
from reminders_pipeline.orchestration.sensors import all_sensors

# A code server of a production deployment without REMINDERS_DATABASE_URL fails to
# load here (the UI shows the error), instead of running on a private, empty
# embedded database.
require_database_url_in_production()

defs = Definitions(
    assets=[daily_reminders],
    jobs=[reminders_job, delivery_job],
    schedules=[daily_reminders_schedule, delivery_retry_schedule],
    sensors=all_sensors,
    resources={
        # The run's lock, steps and log; settings from the environment, read per run.
        "reminders": ReminderRunResource(),
        # REMINDERS_DATABASE_URL (or the embedded server), for schedules and sensors.
        "reminders_db": RemindersDatabaseResource(),
        "alerts": alert_resource_from_env(),
    },
)


def resolved_reminders_job() -> JobDefinition:
    """The job with its resources bound, as the code location serves it.

    For `execute_job(reconstructable(resolved_reminders_job), ...)` outside a code
    server: the CLI, benchmarks and tests run exactly what the daemon launches.
    """
    return defs.get_job_def(reminders_job.name)
