"""reminders_run_failure_sensor: every failed run, with its error and a link to the run.

A run failure sensor (Dagster's own kind): it has no cursor of ours, so it does
not use alerting_sensor; its tick names the run it alerted on, and a tick with no
new failure says so.
"""

from typing import Any

from dagster import (
    DagsterEventType,
    RunFailureSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
)

from reminders_pipeline import settings
from reminders_pipeline.alerts.messages import next_step_after_failure, run_failed_alert
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.jobs import delivery_job, reminders_job
from reminders_pipeline.orchestration.sensors.common import (
    ZOMBIE_TAG,
    alert_destinations,
    sensor_status,
)


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


def _one_line(text: str, limit: int = 300) -> str:
    line = " / ".join(part.strip() for part in text.strip().splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@run_failure_sensor(
    name="reminders_run_failure_sensor",
    monitored_jobs=[reminders_job, delivery_job],
    minimum_interval_seconds=settings.SENSOR_INTERVAL_S.get(),
    default_status=sensor_status(),
    description=(
        f"Watches runs of {reminders_job.name} and {delivery_job.name} that end FAILURE:"
        " alerts once per run with its error (the failed step's innermost exception, or why"
        " the worker died) and a link to"
        f" the run; runs failed by zombie_run_sensor are already alerted. {alert_destinations()}"
    ),
)
def reminders_run_failure_sensor(
    context: RunFailureSensorContext, alerts: AlertResource
) -> SkipReason:
    # Returning the reason names the run on the tick (the UI's only account of it);
    # Dagster then handles one failed run per tick, the next ones on the next ticks.
    run = context.dagster_run
    partition = run.tags.get("dagster/partition") or "no partition"
    if run.tags.get(ZOMBIE_TAG):
        # zombie_run_sensor failed it and sent the alert that explains why: one
        # incident, one alert.
        context.log.info(f"run {run.run_id} was failed as a zombie; already alerted")
        return SkipReason(
            f"already alerted: run {run.run_id} ({partition}) was failed by zombie_run_sensor"
        )
    error = failure_message(context)
    alerts.send(
        run_failed_alert(
            run_id=run.run_id,
            job_name=run.job_name,
            error=error,
            partition=run.tags.get("dagster/partition"),
            link=alerts.run_url(run.run_id),
            next_step=next_step(run.job_name, run.tags.get("dagster/partition")),
        ),
        logger=context.log,
    )
    return SkipReason(f"alerted: run {run.run_id} ({partition}) failed: {_one_line(error)}")


def next_step(job_name: str, partition: str | None) -> str:
    return next_step_after_failure(job_name == delivery_job.name, partition)


def _explain_quiet_ticks(sensor_def: SensorDefinition, quiet: str) -> None:
    """A run-status sensor's tick without a new failure reads "Sensor function returned an
    empty result" in the UI; say what that means instead.

    Wraps the private evaluation function of the pinned Dagster version;
    tests/integration/test_sensors.py fails if a Dagster upgrade changes it.
    """
    inner = sensor_def._evaluation_fn

    def evaluate(context: SensorEvaluationContext) -> Any:
        result = inner(context)
        return result if result else [SkipReason(quiet)]

    sensor_def._evaluation_fn = evaluate  # type: ignore[assignment]


_explain_quiet_ticks(
    reminders_run_failure_sensor,
    f"no failed run of {reminders_job.name} or {delivery_job.name} since the last tick",
)
