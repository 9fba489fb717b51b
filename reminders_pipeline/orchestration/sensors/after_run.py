"""delivery_after_run_sensor: launches delivery_job when a reminders run succeeds."""

from dagster import DagsterRunStatus, RunRequest, RunStatusSensorContext, run_status_sensor

from reminders_pipeline import settings
from reminders_pipeline.orchestration.jobs import delivery_job, reminders_job
from reminders_pipeline.orchestration.sensors.common import sensor_status


@run_status_sensor(
    name="delivery_after_run_sensor",
    run_status=DagsterRunStatus.SUCCESS,
    monitored_jobs=[reminders_job],
    request_job=delivery_job,
    minimum_interval_seconds=settings.SENSOR_INTERVAL_S.get(),
    default_status=sensor_status(),
    description=f"Launches {delivery_job.name} after each successful run of {reminders_job.name}.",
)
def delivery_after_run_sensor(context: RunStatusSensorContext) -> RunRequest:
    run_id = context.dagster_run.run_id
    return RunRequest(run_key=f"after-{run_id}", tags={"reminders/after_run": run_id})
