"""The Dagster code location: jobs, schedules, sensors and resources."""

from dagster import Definitions

from reminders_pipeline.db.url import require_database_url_in_production
from reminders_pipeline.orchestration.alert_resource import alert_resource_from_env
from reminders_pipeline.orchestration.assets import daily_reminders
from reminders_pipeline.orchestration.jobs import reminders_job
from reminders_pipeline.orchestration.resources import RemindersDatabaseResource
from reminders_pipeline.orchestration.schedules import daily_reminders_schedule
from reminders_pipeline.orchestration.sensors import all_sensors

# A code server of a production deployment without REMINDERS_DATABASE_URL fails to
# load here (the UI shows the error), instead of running on a private, empty
# embedded database.
require_database_url_in_production()

defs = Definitions(
    assets=[daily_reminders],
    jobs=[reminders_job],
    schedules=[daily_reminders_schedule],
    sensors=all_sensors,
    resources={
        # REMINDERS_DATABASE_URL (or the embedded server), like the job's own resource.
        "reminders_db": RemindersDatabaseResource(),
        "alerts": alert_resource_from_env(),
    },
)
