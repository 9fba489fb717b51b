"""delivery_after_run_sensor: launches delivery_job after a reminders run that created some.

A skipped run (another run held the lock) is a Dagster success too, and a run that
created nothing has nothing new to deliver: neither launches a delivery. Deliveries
left waiting by an earlier failure are delivery_retry_schedule's.
"""

from dagster import (
    DagsterRunStatus,
    RunRequest,
    RunStatusSensorContext,
    SkipReason,
    run_status_sensor,
)

from reminders_pipeline import settings
from reminders_pipeline.orchestration.jobs import delivery_job, reminders_job
from reminders_pipeline.orchestration.ops import CREATED_TAG, OUTCOME_TAG
from reminders_pipeline.orchestration.sensors.common import sensor_status


@run_status_sensor(
    name="delivery_after_run_sensor",
    run_status=DagsterRunStatus.SUCCESS,
    monitored_jobs=[reminders_job],
    request_job=delivery_job,
    minimum_interval_seconds=settings.SENSOR_INTERVAL_S.get(),
    default_status=sensor_status(),
    description=(
        f"Launches {delivery_job.name} after each run of {reminders_job.name} that succeeded"
        f" ({OUTCOME_TAG}=success, not skipped) and created reminders ({CREATED_TAG} > 0)."
    ),
)
def delivery_after_run_sensor(context: RunStatusSensorContext) -> RunRequest | SkipReason:
    run = context.dagster_run
    # The ops tag the run as it goes: read the stored run, with every tag it got.
    tags = (context.instance.get_run_by_id(run.run_id) or run).tags
    outcome = tags.get(OUTCOME_TAG)
    if outcome != "success":
        return SkipReason(f"run {run.run_id} was {outcome or 'not recorded'}: nothing to deliver")
    if tags.get(CREATED_TAG) == "0":
        return SkipReason(f"run {run.run_id} created no reminders: nothing new to deliver")
    return RunRequest(run_key=f"after-{run.run_id}", tags={"reminders/after_run": run.run_id})
