"""Alerting sensors of the reminders job. They only observe and alert; they launch nothing.

- long run: a run in progress longer than REMINDERS_LONG_RUN_MINUTES (Dagster runs,
  and 'running' rows in reminder_runs started outside Dagster), once per run;
- failure: a failed run, with its error and a link to the run in the UI;
- repeated skips: REMINDERS_SKIP_ALERT_AFTER skipped runs in a row, once per streak;
- stale lock: the run lock held by a session whose run is not in progress,
  once per session. The session is never terminated automatically.

One sensor acts: zombie runs (reminders_pipeline.core.zombies) are runs Dagster shows
STARTED or STARTING whose worker is gone (no reminders database session for the
grace period); it reports them failed, so the one-at-a-time queue moves on, and
alerts once per run.

Messages and delivery live in reminders_pipeline.alerts (plain Python); cursors
here remember what was already alerted.
"""

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from reminders_pipeline import settings
from reminders_pipeline.alerts.messages import (
    long_run_alert,
    now_utc,
    repeated_skips_alert,
    run_failed_alert,
    stale_lock_alert,
    zombie_alert,
)
from reminders_pipeline.core.lock import APPLICATION_PREFIX, LockHolder
from reminders_pipeline.core.zombies import (
    RunSeen,
    find_zombies,
    live_run_ids,
    zombie_failure_message,
)
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.jobs import reminders_job
from reminders_pipeline.orchestration.resources import RemindersDatabaseResource

log = logging.getLogger(__name__)
T = TypeVar("T")


def sensor_status() -> DefaultSensorStatus:
    """The sensors' status at first deployment (REMINDERS_SENSORS_DEFAULT_STATUS)."""
    return DefaultSensorStatus(settings.SENSORS_DEFAULT_STATUS.get().upper())


RUNNING_STATUSES = [DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]

# Set on a run that zombie_run_sensor failed (its alert already went out).
ZOMBIE_TAG = "reminders/failed_as_zombie"


def _load_cursor(cursor: str | None) -> dict[str, Any]:
    try:
        value = json.loads(cursor) if cursor else {}
    except json.JSONDecodeError:
        value = {}
    return value if isinstance(value, dict) else {}


def _try(what: str, fn: Callable[[], T], problems: list[str]) -> T | None:
    """A check that cannot reach the reminders database reports it and carries on."""
    try:
        return fn()
    except Exception as exc:
        log.exception("%s failed", what)
        problems.append(f"{what} failed: {type(exc).__name__}: {exc}")
        return None


def _summary(fired: list[str], problems: list[str], quiet: str) -> SkipReason:
    parts = [f"alerted: {'; '.join(fired)}"] if fired else [quiet]
    return SkipReason(" | ".join(parts + problems))


# ------------------------------------------------------------------ long runs


def check_long_runs(
    instance: DagsterInstance,
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
    cursor: str | None,
    threshold: timedelta,
    logger: Any = None,
) -> tuple[list[str], list[str], str]:
    """Alert once per run in progress longer than threshold. Returns (fired, problems, cursor)."""
    state = _load_cursor(cursor)
    alerted_runs, alerted_rows = set(state.get("runs", [])), set(state.get("rows", []))
    now = now_utc()
    fired: list[str] = []
    problems: list[str] = []
    records = instance.get_run_records(
        filters=RunsFilter(job_name=reminders_job.name, statuses=RUNNING_STATUSES)
    )
    in_progress = {record.dagster_run.run_id for record in records}
    holder = _try("reading the lock holder", reminders_db.lock_holder, problems)
    lock_known = not problems
    for record in records:
        run_id = record.dagster_run.run_id
        if record.start_time is None or run_id in alerted_runs:
            continue
        started = datetime.fromtimestamp(record.start_time, UTC)
        if now - started < threshold:
            continue
        alerts.send(
            long_run_alert(
                run_id=run_id,
                started_at=started,
                elapsed=now - started,
                threshold=threshold,
                source="Dagster",
                holds_lock=(holder is not None and holder.run_id == run_id) if lock_known else None,
                link=alerts.run_url(run_id),
            ),
            logger=logger,
        )
        alerted_runs.add(run_id)
        fired.append(f"run {run_id} long-running")

    rows = _try(
        "reading running rows of reminder_runs",
        lambda: reminders_db.runlog().running_started_before(threshold.total_seconds()),
        problems,
    )
    old_rows = {row["id"] for row in rows or []}
    for row in rows or []:
        if row["id"] in alerted_rows or row["dagster_run_id"] in in_progress:
            continue  # already alerted, or the Dagster run above covers it
        elapsed = now - row["started_at"]
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
    return fired, problems, new_cursor


@sensor(
    name="long_running_reminders_sensor",
    minimum_interval_seconds=settings.SENSOR_INTERVAL_S.get(),
    default_status=sensor_status(),
    description="Alerts once per reminders run in progress over "
    f"{settings.LONG_RUN_MINUTES.get()} minutes.",
)
def long_running_reminders_sensor(
    context: SensorEvaluationContext,
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
) -> SkipReason:
    minutes = settings.LONG_RUN_MINUTES.get()
    fired, problems, cursor = check_long_runs(
        context.instance,
        reminders_db,
        alerts,
        context.cursor,
        timedelta(minutes=minutes),
        context.log,
    )
    context.update_cursor(cursor)
    return _summary(fired, problems, f"no run over {minutes} min")


# ------------------------------------------------------------------ failures


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


# ------------------------------------------------------------------ repeated skips


def check_repeated_skips(
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
    cursor: str | None,
    threshold: int,
    logger: Any = None,
) -> tuple[list[str], list[str], str | None]:
    """Alert once per streak of `threshold` or more skipped runs, newest rows first."""
    problems: list[str] = []
    rows = _try(
        "reading reminder_runs",
        lambda: reminders_db.runlog().recent(limit=max(threshold, 50)),
        problems,
    )
    if rows is None:
        return [], problems, cursor
    streak = []
    for row in rows:
        if row["status"] != "skipped":
            break
        streak.append(row)
    if len(streak) < threshold:
        return [], problems, ""  # the streak is broken: a new one alerts again
    first = streak[-1]
    streak_id = str(first["id"])
    if cursor == streak_id:
        return [], problems, cursor
    holder = _try("reading the lock holder", reminders_db.lock_holder, problems)
    latest = streak[0]
    recorded = None
    if latest["blocked_by_pid"] is not None:
        recorded = f"pid {latest['blocked_by_pid']}, run {latest['blocked_by_run_id'] or '?'}"
    elif latest["blocked_by_run_id"]:
        recorded = f"run {latest['blocked_by_run_id']}"
    alerts.send(
        repeated_skips_alert(
            count=len(streak),
            since=first["started_at"],
            last_reason=latest["error"],
            holder=holder,
            recorded_holder=recorded,
        ),
        logger=logger,
    )
    return [f"{len(streak)} skipped runs in a row"], problems, streak_id


@sensor(
    name="repeated_skips_sensor",
    minimum_interval_seconds=settings.SENSOR_INTERVAL_S.get(),
    default_status=sensor_status(),
    description=f"Alerts when {settings.SKIP_ALERT_AFTER.get()} or more reminders runs in a row"
    " were skipped.",
)
def repeated_skips_sensor(
    context: SensorEvaluationContext,
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
) -> SkipReason:
    fired, problems, cursor = check_repeated_skips(
        reminders_db, alerts, context.cursor, settings.SKIP_ALERT_AFTER.get(), context.log
    )
    if cursor is not None:
        context.update_cursor(cursor)
    return _summary(fired, problems, "no skip streak")


# ------------------------------------------------------------------ stale lock


def stale_reason(
    instance: DagsterInstance, reminders_db: RemindersDatabaseResource, holder: LockHolder
) -> str | None:
    """Why the holder's run is not in progress, or None when it is (or may be)."""
    if holder.since is not None:
        age = now_utc() - holder.since
        if age < timedelta(seconds=settings.STALE_LOCK_GRACE_S.get()):
            return None
    if holder.run_id is not None:
        run = instance.get_run_by_id(holder.run_id)
        if run is not None:
            return f"its Dagster run is {run.status.value}" if run.is_finished else None
    # Unknown to this Dagster instance: a live run elsewhere (the CLI with another
    # DAGSTER_HOME) still has its 'running' row written by this very session.
    rows = reminders_db.runlog().for_dagster_run(holder.run_id) if holder.run_id else []
    if any(r["status"] == "running" for r in rows):
        return None
    if holder.run_id is not None:
        state = f"its run is {rows[0]['status']} in reminder_runs" if rows else "no run record"
        return f"run {holder.run_id} is unknown to Dagster ({state})"
    if (holder.application_name or "").startswith(APPLICATION_PREFIX):
        running = reminders_db.runlog().recent(limit=20, status="running")
        if any(r["lock_backend_pid"] == holder.pid for r in running):
            return None
        return "a reminders session without a run id and without a 'running' row"
    return f"not a reminders run at all (application_name {holder.application_name!r})"


def check_stale_lock(
    instance: DagsterInstance,
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
    cursor: str | None,
    logger: Any = None,
) -> tuple[list[str], list[str], str | None]:
    problems: list[str] = []
    holder = _try("reading the lock holder", reminders_db.lock_holder, problems)
    if holder is None:
        return [], problems, ("" if not problems else cursor)
    key = f"{holder.pid}@{holder.since.isoformat() if holder.since else '?'}"
    if key == cursor:
        return [], problems, cursor
    why = _try("judging the lock holder", lambda: stale_reason(instance, reminders_db, holder), [])
    if why is None:
        return [], problems, cursor
    # The run may have just let go; alert only if the very same session still holds it.
    again = _try("reading the lock holder", reminders_db.lock_holder, problems)
    if again is None or (again.pid, again.since) != (holder.pid, holder.since):
        return [], problems, cursor
    link = alerts.run_url(holder.run_id) if holder.run_id else None
    alerts.send(stale_lock_alert(holder=holder, why=why, link=link), logger=logger)
    return [f"stale lock held by pid {holder.pid}"], problems, key


@sensor(
    name="stale_lock_sensor",
    minimum_interval_seconds=settings.SENSOR_INTERVAL_S.get(),
    default_status=sensor_status(),
    description=(
        "Alerts when the reminders run lock is held by a session whose run is finished, "
        "failed or unknown to Dagster. Never terminates it."
    ),
)
def stale_lock_sensor(
    context: SensorEvaluationContext,
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
) -> SkipReason:
    fired, problems, cursor = check_stale_lock(
        context.instance, reminders_db, alerts, context.cursor, context.log
    )
    if cursor is not None:
        context.update_cursor(cursor)
    return _summary(fired, problems, "the run lock is free or held by a run in progress")


# ------------------------------------------------------------------ zombie runs

# Off switch: REMINDERS_ZOMBIE_SENSOR=off. The sensor then starts stopped and, if
# turned on in the UI anyway, does nothing, so a deployment can opt out for sure.
# REMINDERS_ZOMBIE_GRACE_S: how long a run in progress may have no reminders
# session before it is failed.
ZOMBIE_STATUSES = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def _timestamp(moment: datetime | float | None) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, datetime):
        # SQLite run storage returns naive UTC.
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
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
    cursor: str | None,
    grace: timedelta,
    logger: Any = None,
) -> tuple[list[str], list[str], str | None]:
    """Fail and alert once per zombie run. Returns (fired, problems, cursor).

    The cursor maps run ids without a session to when that was first seen.
    """
    state = _load_cursor(cursor)
    raw = state.get("missing") if isinstance(state.get("missing"), dict) else {}
    missing = {run_id: ts for run_id, value in raw.items() if (ts := _parse_time(value))}
    problems: list[str] = []
    records = instance.get_run_records(
        filters=RunsFilter(job_name=reminders_job.name, statuses=ZOMBIE_STATUSES)
    )
    if not records:
        return [], problems, json.dumps({"missing": {}})
    # Without the heartbeat there is no verdict: keep the cursor as it was.
    live = _try(
        "reading the reminders sessions",
        lambda: live_run_ids(reminders_db.resolved_database_url()),
        problems,
    )
    if live is None:
        return [], problems, cursor
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
        fired.append(f"run {run_id} had no session for {zombie.missing_for(now)}: marked failed")
    new_cursor = {run_id: ts.isoformat() for run_id, ts in verdict.missing_since.items()}
    return fired, problems, json.dumps({"missing": new_cursor})


def _parse_time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@sensor(
    name="zombie_run_sensor",
    minimum_interval_seconds=settings.zombie_interval_s(),
    default_status=sensor_status() if settings.ZOMBIE_SENSOR.get() else DefaultSensorStatus.STOPPED,
    description=(
        "Marks failed (and alerts once for) reminders runs shown STARTED or STARTING with no"
        f" reminders database session for {settings.ZOMBIE_GRACE_S.get()} s: their worker is"
        " gone."
    ),
)
def zombie_run_sensor(
    context: SensorEvaluationContext,
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
) -> SkipReason:
    if not settings.ZOMBIE_SENSOR.get():
        return SkipReason("off: REMINDERS_ZOMBIE_SENSOR=off")
    fired, problems, cursor = check_zombie_runs(
        context.instance,
        reminders_db,
        alerts,
        context.cursor,
        timedelta(seconds=settings.ZOMBIE_GRACE_S.get()),
        context.log,
    )
    if cursor is not None:
        context.update_cursor(cursor)
    return _summary(fired, problems, "no zombie run")


all_sensors = [
    long_running_reminders_sensor,
    reminders_run_failure_sensor,
    repeated_skips_sensor,
    stale_lock_sensor,
    zombie_run_sensor,
]
