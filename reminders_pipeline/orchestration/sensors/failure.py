"""reminders_run_failure_sensor: every failed run, with its error and a link to the run.

A plain sensor over Dagster's public record of run failures, one failed run per tick,
so each tick names the run it alerted on and a tick with no new failure says so (a
run_failure_sensor's quiet tick only reads "Sensor function returned an empty
result"). The cursor is the last failure event handled, `record_id` as in the
cursor of Dagster's run status sensors, so a deployment that had one carries on.
"""

import json
from typing import Any

from dagster import (
    DagsterEventType,
    RunFailureSensorContext,
    RunStatusChangeRecordsFilter,
    SensorEvaluationContext,
    SkipReason,
    build_run_status_sensor_context,
    sensor,
)

from reminders_pipeline import settings
from reminders_pipeline.alerts.messages import next_step_after_failure, run_failed_alert
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.jobs import delivery_job, reminders_job
from reminders_pipeline.orchestration.sensors.common import (
    ZOMBIE_TAG,
    alert_destinations,
    load_cursor,
    sensor_status,
)

MONITORED_JOBS = (reminders_job.name, delivery_job.name)
SENSOR_NAME = "reminders_run_failure_sensor"


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


def alert_failed_run(context: RunFailureSensorContext, alerts: AlertResource) -> SkipReason:
    """Alert on one failed run; the reason names the run on the tick (the UI's only account)."""
    run = context.dagster_run
    partition = run.tags.get("dagster/partition")
    named = f"run {run.run_id} ({partition or 'no partition'})"
    if run.tags.get(ZOMBIE_TAG):
        # zombie_run_sensor failed it and sent the alert that explains why: one
        # incident, one alert.
        context.log.info(f"run {run.run_id} was failed as a zombie; already alerted")
        return SkipReason(f"already alerted: {named} was failed by zombie_run_sensor")
    error = failure_message(context)
    alerts.send(
        run_failed_alert(
            run_id=run.run_id,
            job_name=run.job_name,
            error=error,
            partition=partition,
            link=alerts.run_url(run.run_id),
            next_step=next_step_after_failure(run.job_name == delivery_job.name, partition),
        ),
        logger=context.log,
    )
    return SkipReason(f"alerted: {named} failed: {_one_line(error)}")


@sensor(
    name=SENSOR_NAME,
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
    context: SensorEvaluationContext, alerts: AlertResource
) -> SkipReason:
    instance = context.instance
    after = load_cursor(context.cursor).get("record_id")
    if not isinstance(after, int):  # the first tick: failures from before the sensor are old news
        latest = instance.fetch_run_status_changes(DagsterEventType.RUN_FAILURE, limit=1).records
        context.update_cursor(json.dumps({"record_id": latest[0].storage_id if latest else -1}))
        return SkipReason("started: failed runs from now on are alerted")
    failures = instance.fetch_run_status_changes(
        RunStatusChangeRecordsFilter(DagsterEventType.RUN_FAILURE, after_storage_id=after),
        limit=100,
        ascending=True,
    ).records
    for record in failures:
        context.update_cursor(json.dumps({"record_id": record.storage_id}))
        run = instance.get_run_by_id(record.run_id)
        event = record.event_log_entry.dagster_event
        if run is None or event is None or run.job_name not in MONITORED_JOBS:
            continue
        failed = build_run_status_sensor_context(
            sensor_name=SENSOR_NAME,
            dagster_event=event,
            dagster_instance=instance,
            dagster_run=run,
            context=context,
        ).for_run_failure()
        return alert_failed_run(failed, alerts)
    return SkipReason(f"no failed run of {' or '.join(MONITORED_JOBS)} since the last tick")
