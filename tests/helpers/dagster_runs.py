"""Runs of the reminders job in a test Dagster instance, in any state, at any time."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    EventLogEntry,
    RunRequest,
    SkipReason,
    build_run_status_sensor_context,
    build_sensor_context,
)
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.test_utils import create_run_for_test

from reminders_pipeline.orchestration.definitions import defs
from reminders_pipeline.orchestration.jobs import reminders_job
from reminders_pipeline.orchestration.sensors import reminders_run_failure_sensor
from reminders_pipeline.orchestration.sensors.after_run import delivery_after_run_sensor

# The run storage derives a run's status (and start/end times) from these events.
_EVENT_FOR_STATUS = {
    DagsterRunStatus.QUEUED: DagsterEventType.RUN_ENQUEUED,
    DagsterRunStatus.STARTING: DagsterEventType.RUN_STARTING,
    DagsterRunStatus.STARTED: DagsterEventType.RUN_START,
    DagsterRunStatus.SUCCESS: DagsterEventType.RUN_SUCCESS,
    DagsterRunStatus.FAILURE: DagsterEventType.RUN_FAILURE,
    DagsterRunStatus.CANCELING: DagsterEventType.RUN_CANCELING,
    DagsterRunStatus.CANCELED: DagsterEventType.RUN_CANCELED,
}


# Queued runs must name where they would be launched from.
_ORIGIN = RemoteJobOrigin(
    RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("reminders_pipeline"), "__repository__"),
    reminders_job.name,
)


def report(
    instance: DagsterInstance,
    run_id: str,
    status: DagsterRunStatus,
    at: datetime | None = None,
    message: str = "",
) -> None:
    event = DagsterEvent(
        event_type_value=_EVENT_FOR_STATUS[status].value,
        job_name=reminders_job.name,
        message=message,
    )
    instance.handle_new_event(
        EventLogEntry(
            error_info=None,
            level=logging.INFO,
            user_message=message,
            run_id=run_id,
            timestamp=at.timestamp() if at else time.time(),
            dagster_event=event,
        )
    )


def job_run(
    instance: DagsterInstance,
    status: DagsterRunStatus,
    *,
    started_at: datetime | None = None,
    run_id: str | None = None,
    job_name: str = reminders_job.name,
    **tags: str,
) -> str:
    """A run of the reminders job (or job_name) that has gone through the events up to `status`."""
    run = create_run_for_test(
        instance,
        job_name=job_name,
        run_id=run_id,
        status=DagsterRunStatus.NOT_STARTED,
        # Only queued runs need an origin; without one a run matches sensors built in tests.
        remote_job_origin=_ORIGIN if status == DagsterRunStatus.QUEUED else None,
        tags={"dagster/partition": "2026-03-29", **tags},
    )
    if status == DagsterRunStatus.NOT_STARTED:
        return run.run_id
    if status == DagsterRunStatus.QUEUED:
        report(instance, run.run_id, status)
        return run.run_id
    report(instance, run.run_id, DagsterRunStatus.STARTED, started_at)
    if status != DagsterRunStatus.STARTED:
        report(instance, run.run_id, status)
    return run.run_id


def evaluate_sensor(
    sensor: Any, instance: DagsterInstance, resources: dict, cursor: str | None
) -> tuple[str, str | None]:
    """Call a plain sensor once; returns its skip message (the tick history) and new cursor."""
    with build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources=resources,
        repository_def=defs.get_repository_def(),
    ) as context:
        result = sensor(context)
        return result.skip_message or "", context.cursor


def after_run_sensor(instance: DagsterInstance, run_id: str) -> RunRequest | SkipReason:
    """Evaluate delivery_after_run_sensor on the run's last event (its end)."""
    end = instance.get_records_for_run(run_id).records[-1].event_log_entry.dagster_event
    context = build_run_status_sensor_context(
        sensor_name=delivery_after_run_sensor.name,
        dagster_event=end,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
    )
    return delivery_after_run_sensor(context)


def failure_sensor_ticks(
    instance: DagsterInstance,
    resources: dict,
    cursor: str | None,
    ticks: int = 1,
    messages: list[str | None] | None = None,
) -> str | None:
    """Evaluate the run-failure sensor `ticks` times through Dagster's tick; the new cursor.

    Each tick's skip message (what the UI shows for it) is appended to `messages`.
    """
    for _ in range(ticks):
        with build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources=resources,
            repository_def=defs.get_repository_def(),
        ) as context:
            data = reminders_run_failure_sensor.evaluate_tick(context)
            cursor = data.cursor
            if messages is not None:
                messages.append(data.skip_message)
    return cursor
