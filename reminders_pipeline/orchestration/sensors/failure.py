"""reminders_run_failure_sensor: every failed run, with its error and a link to the run.

A run failure sensor (Dagster's own kind): it has no cursor of ours and sends
no summary, so it does not use alerting_sensor.
"""

from typing import Any

from dagster import DagsterEventType, RunFailureSensorContext, run_failure_sensor

from reminders_pipeline import settings
from reminders_pipeline.alerts.messages import run_failed_alert
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.jobs import reminders_job
from reminders_pipeline.orchestration.sensors.common import ZOMBIE_TAG, sensor_status


def _root_cause(error: Any) -> str:
    # Dagster wraps an op's exception ("Error occurred while executing op ..."):
    # the operator needs the innermost one.
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return error.message.strip()


def failure_message(context: RunFailureSensorContext) -> str:
    """The step errors when a step failed; otherwise why the run failed (crash, timeout)."""
    errors = []
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        errors.append(f"{event.step_key}: {_root_cause(error) if error else event.message}")
    if errors:
        return "\n".join(errors)
    message = context.failure_event.message or "the run failed"
    crashes = [
        entry.message
        for entry in context.instance.all_logs(
            context.dagster_run.run_id, of_type=DagsterEventType.ENGINE_EVENT
        )
        if "Run execution process for" in entry.message
    ]
    return f"{message} {crashes[-1]}" if crashes else message


@run_failure_sensor(
    name="reminders_run_failure_sensor",
    monitored_jobs=[reminders_job],
    minimum_interval_seconds=settings.SENSOR_INTERVAL_S.get(),
    default_status=sensor_status(),
    description="Alerts on every failed reminders run, with the error and a link to the run.",
)
def reminders_run_failure_sensor(context: RunFailureSensorContext, alerts: AlertResource) -> None:
    run = context.dagster_run
    if run.tags.get(ZOMBIE_TAG):
        # zombie_run_sensor failed it and sent the alert that explains why: one
        # incident, one alert.
        context.log.info(f"run {run.run_id} was failed as a zombie; already alerted")
        return
    alerts.send(
        run_failed_alert(
            run_id=run.run_id,
            job_name=run.job_name,
            error=failure_message(context),
            partition=run.tags.get("dagster/partition"),
            link=alerts.run_url(run.run_id),
        ),
        logger=context.log,
    )
