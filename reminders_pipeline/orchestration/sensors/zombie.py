"""zombie_run_sensor: runs Dagster shows STARTED or STARTING whose worker is gone.

A zombie (core/zombies.py) has had no reminders database session for the grace
period (REMINDERS_ZOMBIE_GRACE_S); the sensor reports it failed, so the
one-at-a-time queue moves on, and alerts once per run. Off switch:
REMINDERS_ZOMBIE_SENSOR=off: the sensor then starts stopped and, if turned on in
the UI anyway, does nothing, so a deployment can opt out for sure.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    SensorEvaluationContext,
)

from reminders_pipeline import settings
from reminders_pipeline.alerts.messages import elapsed_for, now_utc, zombie_alert
from reminders_pipeline.core.sensor_reads import SensorReads
from reminders_pipeline.core.zombies import (
    RunSeen,
    find_zombies,
    zombie_failure_message,
)
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.jobs import reminders_job
from reminders_pipeline.orchestration.sensors.common import (
    ZOMBIE_TAG,
    Checked,
    alert_destinations,
    alerting_sensor,
    attempt,
    load_cursor,
    log,
    sensor_status,
)

ZOMBIE_STATUSES = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def _timestamp(moment: datetime | float | None) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, datetime):
        # Naive means UTC: SQLite run storage returns it so.
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(moment, UTC)


def _run_seen(instance: DagsterInstance, record: Any) -> RunSeen:
    run = record.dagster_run
    if run.status == DagsterRunStatus.STARTED:
        since = _timestamp(record.start_time)
    else:  # STARTING: since its launch, as run monitoring counts it
        since = _timestamp(instance.get_run_stats(run.run_id).launch_time)
    return RunSeen(
        run_id=run.run_id,
        status=run.status.value,
        since=since or _timestamp(record.update_timestamp),
        partition=run.tags.get("dagster/partition"),
    )


def check_zombie_runs(
    instance: DagsterInstance,
    reads: SensorReads,
    alerts: AlertResource,
    cursor: str | None,
    grace: timedelta,
    logger: Any = None,
) -> Checked:
    """Fail and alert once per zombie run.

    The cursor maps run ids without a session to when that was first seen.
    """
    state = load_cursor(cursor)
    raw = state.get("missing") if isinstance(state.get("missing"), dict) else {}
    missing = {run_id: ts for run_id, value in raw.items() if (ts := _parse_time(value))}
    problems: list[str] = []
    records = instance.get_run_records(
        filters=RunsFilter(job_name=reminders_job.name, statuses=ZOMBIE_STATUSES)
    )
    if not records:
        return Checked([], problems, json.dumps({"missing": {}}))
    # Without the heartbeat there is no verdict: keep the cursor as it was.
    live = attempt("reading the reminders sessions", reads.live_run_ids, problems)
    if live is None:
        return Checked([], problems, cursor)
    now = now_utc()
    verdict = find_zombies(
        [_run_seen(instance, record) for record in records], live, missing, now, grace
    )
    fired: list[str] = []
    for zombie in verdict.zombies:
        run_id = zombie.run.run_id
        run = instance.get_run_by_id(run_id)
        if run is None or run.status not in ZOMBIE_STATUSES:
            continue  # it ended meanwhile
        try:
            # The tag tells the failure sensor this failure is already alerted.
            instance.add_run_tags(run_id, {ZOMBIE_TAG: "true"})
            # What run monitoring does with a run worker it finds dead.
            instance.report_run_failed(run, zombie_failure_message(zombie, now))
        except Exception as exc:
            log.exception("could not mark run %s failed", run_id)
            problems.append(f"marking run {run_id} failed failed: {type(exc).__name__}: {exc}")
            verdict.missing_since[run_id] = zombie.missing_since  # try again next time
            continue
        alerts.send(zombie_alert(zombie, now, grace, alerts.run_url(run_id)), logger=logger)
        missing_for = elapsed_for(zombie.missing_for(now), grace)
        fired.append(f"run {run_id} had no session for {missing_for}: marked failed")
    new_cursor = {run_id: ts.isoformat() for run_id, ts in verdict.missing_since.items()}
    return Checked(fired, problems, json.dumps({"missing": new_cursor}))


def _parse_time(value: Any) -> datetime | None:
    try:
        return _timestamp(datetime.fromisoformat(value))
    except (TypeError, ValueError):
        return None


@alerting_sensor(
    description=(
        "Watches reminders runs shown STARTED or STARTING: one with no reminders database"
        f" session for {settings.ZOMBIE_GRACE_S.get()} s (REMINDERS_ZOMBIE_GRACE_S) has lost"
        " its worker; it is marked failed, which frees the run queue, and alerted once."
        f" Off with REMINDERS_ZOMBIE_SENSOR=off. {alert_destinations()}"
    ),
    interval_s=settings.zombie_interval_s(),
    default_status=sensor_status() if settings.ZOMBIE_SENSOR.get() else DefaultSensorStatus.STOPPED,
)
def zombie_run_sensor(
    context: SensorEvaluationContext, reads: SensorReads, alerts: AlertResource
) -> Checked:
    if not settings.ZOMBIE_SENSOR.get():
        return Checked([], [], None, quiet="off: REMINDERS_ZOMBIE_SENSOR=off")
    checked = check_zombie_runs(
        context.instance,
        reads,
        alerts,
        context.cursor,
        timedelta(seconds=settings.ZOMBIE_GRACE_S.get()),
        context.log,
    )
    return checked.saying("no zombie run")
