"""long_running_reminders_sensor: a run in progress longer than REMINDERS_LONG_RUN_MINUTES
(or REMINDERS_LONG_RUN_S, which wins when set: thresholds under a minute, for drills and tests).

Dagster runs, and 'running' rows in reminder_runs started outside Dagster; once
per run.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter, SensorEvaluationContext

from reminders_pipeline import settings
from reminders_pipeline.alerts.messages import duration, elapsed_for, long_run_alert, now_utc
from reminders_pipeline.core.sensor_reads import SensorReads
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.jobs import delivery_job, reminders_job
from reminders_pipeline.orchestration.sensors.common import (
    Checked,
    alert_destinations,
    alerting_sensor,
    attempt,
    load_cursor,
)

RUNNING_STATUSES = [DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def check_long_runs(
    instance: DagsterInstance,
    reads: SensorReads,
    alerts: AlertResource,
    cursor: str | None,
    threshold: timedelta,
    logger: Any = None,
) -> Checked:
    """Alert once per run in progress longer than threshold."""
    state = load_cursor(cursor)
    alerted_runs, alerted_rows = set(state.get("runs", [])), set(state.get("rows", []))
    now = now_utc()
    fired: list[str] = []
    still: list[str] = []
    problems: list[str] = []
    records = [
        record
        for job_name in (reminders_job.name, delivery_job.name)
        for record in instance.get_run_records(
            filters=RunsFilter(job_name=job_name, statuses=RUNNING_STATUSES)
        )
    ]
    in_progress = {record.dagster_run.run_id for record in records}
    holder = attempt("reading the lock holder", reads.lock_holder, problems)
    lock_known = not problems
    for record in records:
        run_id = record.dagster_run.run_id
        if record.start_time is None:
            continue
        started = datetime.fromtimestamp(record.start_time, UTC)
        if run_id in alerted_runs:
            still.append(f"run {run_id} in progress for {elapsed_for(now - started, threshold)}")
            continue
        if now - started < threshold:
            continue
        alerts.send(
            long_run_alert(
                run_id=run_id,
                started_at=started,
                elapsed=now - started,
                threshold=threshold,
                source=f"Dagster ({record.dagster_run.job_name})",
                # The delivery job never takes the lock: holding it says nothing of it.
                holds_lock=(holder is not None and holder.run_id == run_id)
                if lock_known and record.dagster_run.job_name == reminders_job.name
                else None,
                link=alerts.run_url(run_id),
            ),
            logger=logger,
        )
        alerted_runs.add(run_id)
        fired.append(f"run {run_id} long-running")

    rows = attempt(
        "reading running rows of reminder_runs",
        lambda: reads.running_started_before(threshold.total_seconds()),
        problems,
    )
    old_rows = {row["id"] for row in rows or []}
    for row in rows or []:
        if row["dagster_run_id"] in in_progress:
            continue  # the Dagster run above covers it
        elapsed = now - row["started_at"]
        if row["id"] in alerted_rows:
            still.append(
                f"reminder_runs {row['id']} 'running' for {elapsed_for(elapsed, threshold)}"
            )
            continue
        known = instance.get_run_by_id(row["dagster_run_id"]) if row["dagster_run_id"] else None
        source = (
            f"reminder_runs, left 'running' although its Dagster run is {known.status.value}"
            " (the process died; the next run marks the row abandoned)"
            if known is not None
            else f"reminder_runs (trigger {row['trigger']}, outside this Dagster instance)"
        )
        alerts.send(
            long_run_alert(
                run_id=row["dagster_run_id"],
                started_at=row["started_at"],
                elapsed=elapsed,
                threshold=threshold,
                source=source,
                holds_lock=(holder is not None and holder.pid == row["lock_backend_pid"])
                if lock_known
                else None,
                reminder_runs_id=row["id"],
            ),
            logger=logger,
        )
        alerted_rows.add(row["id"])
        fired.append(f"reminder_runs {row['id']} long-running")

    # Remember only what is still running, so the cursor stays small.
    new_cursor = json.dumps(
        {
            "runs": sorted(alerted_runs & in_progress),
            "rows": sorted(alerted_rows & old_rows) if rows is not None else sorted(alerted_rows),
        }
    )
    return Checked(fired, problems, new_cursor, still)


def long_run_threshold() -> timedelta:
    return timedelta(seconds=settings.long_run_s())


@alerting_sensor(
    description=(
        f"Watches reminders runs in progress (Dagster runs of {reminders_job.name} and"
        f" {delivery_job.name}, and"
        " 'running' rows in reminder_runs): alerts once per run over"
        f" {duration(long_run_threshold())} (REMINDERS_LONG_RUN_MINUTES or"
        f" REMINDERS_LONG_RUN_S). {alert_destinations()}"
    ),
)
def long_running_reminders_sensor(
    context: SensorEvaluationContext, reads: SensorReads, alerts: AlertResource
) -> Checked:
    threshold = long_run_threshold()
    checked = check_long_runs(
        context.instance, reads, alerts, context.cursor, threshold, context.log
    )
    return checked.saying(f"no run over {duration(threshold)}")
