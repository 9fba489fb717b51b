"""Alerting sensors of the reminders job. They only observe and alert; they launch nothing.

- long run: a run in progress longer than REMINDERS_LONG_RUN_MINUTES (or _S) (Dagster runs,
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
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from reminders_pipeline.alerts.messages import (
    duration,
    long_run_alert,
    now_utc,
    repeated_skips_alert,
    run_failed_alert,
    stale_lock_alert,
)
from reminders_pipeline.core.lock import APPLICATION_PREFIX, LockHolder
from reminders_pipeline.core.zombies import (
    RunSeen,
    find_zombies,
    live_run_ids,
    zombie_alert,
    zombie_failure_message,
)
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.jobs import reminders_job
from reminders_pipeline.orchestration.resources import RemindersDatabaseResource
from reminders_pipeline.orchestration.schedules import env_int

log = logging.getLogger(__name__)
T = TypeVar("T")

LONG_RUN_MINUTES = env_int("REMINDERS_LONG_RUN_MINUTES", 30, 1, 7 * 24 * 60)
# Seconds, when set, take precedence: thresholds under a minute, for drills and tests.
LONG_RUN = timedelta(
    seconds=env_int("REMINDERS_LONG_RUN_S", LONG_RUN_MINUTES * 60, 10, 7 * 24 * 60 * 60)
)
SKIP_ALERT_AFTER = env_int("REMINDERS_SKIP_ALERT_AFTER", 2, 1, 1000)
SENSOR_INTERVAL_S = env_int("REMINDERS_SENSOR_INTERVAL_S", 60, 5, 3600)
# A lock session younger than this may be a run between taking the lock and
# writing its 'running' row: not judged stale yet.
STALE_LOCK_GRACE_S = env_int("REMINDERS_STALE_LOCK_GRACE_S", 60, 0, 3600)
SENSOR_STATUS = (
    DefaultSensorStatus.STOPPED
    if os.environ.get("REMINDERS_SENSORS_DEFAULT_STATUS", "").lower() == "stopped"
    else DefaultSensorStatus.RUNNING
)
RUNNING_STATUSES = [DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]

# Set on a run that zombie_run_sensor failed (its alert already went out).
ZOMBIE_TAG = "reminders/failed_as_zombie"


def _load_cursor(cursor: str | None) -> dict[str, Any]:
    try:
        value = json.loads(cursor) if cursor else {}
    except json.JSONDecodeError:
        value = {}
    return value if isinstance(value, dict) else {}


class Checked(NamedTuple):
    """What one evaluation of a check found."""

    fired: list[str]  # alerts sent now
    problems: list[str]  # what could not be checked
    cursor: str | None  # None: leave the cursor as it is
    still: list[str] = []  # conditions alerted before that still hold


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} min"


def _try(what: str, fn: Callable[[], T], problems: list[str]) -> T | None:
    """A check that cannot reach the reminders database reports it and carries on."""
    try:
        return fn()
    except Exception as exc:
        log.exception("%s failed", what)
        problems.append(f"{what} failed: {type(exc).__name__}: {exc}")
        return None


def _summary(
    fired: list[str], problems: list[str], quiet: str, still: list[str] | None = None
) -> SkipReason:
    """The tick's reason, the only thing the UI shows of a tick that launches nothing.

    "alerted: ..." on the tick that sent an alert; "already alerted: ..." while the
    condition it alerted on lasts, so no tick after an alert reads as all-clear.
    """
    if fired:
        parts = [f"alerted: {'; '.join(fired)}"]
    elif still:
        parts = [f"already alerted: {'; '.join(still)}"]
    else:
        parts = [quiet]
    return SkipReason(" | ".join(parts + problems))


def alert_destinations() -> str:
    """Where alerts go, for the sensors' descriptions (names only, never a secret)."""
    env = os.environ.get
    where = ["the sensor's log"]
    if env("REMINDERS_ALERT_SLACK_WEBHOOK_URL"):
        where.append("the Slack webhook (REMINDERS_ALERT_SLACK_WEBHOOK_URL)")
    if env("REMINDERS_ALERT_WEBHOOK_URL"):
        where.append("the JSON webhook (REMINDERS_ALERT_WEBHOOK_URL)")
    if env("REMINDERS_ALERT_SMTP_HOST") and env("REMINDERS_ALERT_EMAIL_TO", "").strip():
        where.append(f"email to {env('REMINDERS_ALERT_EMAIL_TO', '').strip()}")
    if len(where) == 1:
        where[0] += " only (no REMINDERS_ALERT_* destination set)"
    return "Alerts go to " + ", ".join(where) + "."


# ------------------------------------------------------------------ long runs


def check_long_runs(
    instance: DagsterInstance,
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
    cursor: str | None,
    threshold: timedelta,
    logger: Any = None,
) -> Checked:
    """Alert once per run in progress longer than threshold."""
    state = _load_cursor(cursor)
    alerted_runs, alerted_rows = set(state.get("runs", [])), set(state.get("rows", []))
    now = now_utc()
    fired: list[str] = []
    still: list[str] = []
    problems: list[str] = []
    records = instance.get_run_records(
        filters=RunsFilter(job_name=reminders_job.name, statuses=RUNNING_STATUSES)
    )
    in_progress = {record.dagster_run.run_id for record in records}
    holder = _try("reading the lock holder", reminders_db.lock_holder, problems)
    lock_known = not problems
    for record in records:
        run_id = record.dagster_run.run_id
        if record.start_time is None:
            continue
        started = datetime.fromtimestamp(record.start_time, UTC)
        if run_id in alerted_runs:
            still.append(f"run {run_id} in progress for {_minutes(now - started)}")
            continue
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
        if row["dagster_run_id"] in in_progress:
            continue  # the Dagster run above covers it
        elapsed = now - row["started_at"]
        if row["id"] in alerted_rows:
            still.append(f"reminder_runs {row['id']} 'running' for {_minutes(elapsed)}")
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


@sensor(
    name="long_running_reminders_sensor",
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=SENSOR_STATUS,
    description=(
        f"Watches reminders runs in progress (Dagster runs of {reminders_job.name}, and"
        f" 'running' rows in reminder_runs): alerts once per run over {duration(LONG_RUN)}"
        f" (REMINDERS_LONG_RUN_MINUTES or REMINDERS_LONG_RUN_S). {alert_destinations()}"
    ),
)
def long_running_reminders_sensor(
    context: SensorEvaluationContext,
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
) -> SkipReason:
    checked = check_long_runs(
        context.instance,
        reminders_db,
        alerts,
        context.cursor,
        LONG_RUN,
        context.log,
    )
    context.update_cursor(checked.cursor)
    return _summary(
        checked.fired, checked.problems, f"no run over {duration(LONG_RUN)}", checked.still
    )


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


def _one_line(text: str, limit: int = 300) -> str:
    line = " / ".join(part.strip() for part in text.strip().splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@run_failure_sensor(
    name="reminders_run_failure_sensor",
    monitored_jobs=[reminders_job],
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=SENSOR_STATUS,
    description=(
        f"Watches runs of {reminders_job.name} that end FAILURE: alerts once per run with its"
        " error (the failed step's innermost exception, or why the worker died) and a link to"
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
        ),
        logger=context.log,
    )
    return SkipReason(f"alerted: run {run.run_id} ({partition}) failed: {_one_line(error)}")


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
    reminders_run_failure_sensor, f"no failed run of {reminders_job.name} since the last tick"
)


# ------------------------------------------------------------------ repeated skips


def check_repeated_skips(
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
    cursor: str | None,
    threshold: int,
    logger: Any = None,
) -> Checked:
    """Alert once per streak of `threshold` or more skipped runs, newest rows first."""
    problems: list[str] = []
    limit = max(threshold, 50)
    rows = _try(
        "reading reminder_runs", lambda: reminders_db.runlog().recent(limit=limit), problems
    )
    if rows is None:
        return Checked([], problems, cursor)
    streak = []
    for row in rows:
        if row["status"] != "skipped":
            break
        streak.append(row)
    if len(streak) < threshold:
        return Checked([], problems, "")  # the streak is broken: a new one alerts again
    first = streak[-1]
    streak_id = str(first["id"])
    if cursor == streak_id:
        seen = f"{limit} or more" if len(streak) == limit else str(len(streak))
        return Checked(
            [],
            problems,
            cursor,
            [
                f"{seen} skipped runs in a row since {first['started_at']:%Y-%m-%d %H:%M %Z}"
                f" (latest: reminder_runs {streak[0]['id']})"
            ],
        )
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
    return Checked([f"{len(streak)} skipped runs in a row"], problems, streak_id)


@sensor(
    name="repeated_skips_sensor",
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=SENSOR_STATUS,
    description=(
        "Watches the latest rows of reminder_runs: alerts once per streak of"
        f" {SKIP_ALERT_AFTER} or more skipped runs in a row (REMINDERS_SKIP_ALERT_AFTER),"
        f" naming who holds the lock. {alert_destinations()}"
    ),
)
def repeated_skips_sensor(
    context: SensorEvaluationContext,
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
) -> SkipReason:
    checked = check_repeated_skips(
        reminders_db, alerts, context.cursor, SKIP_ALERT_AFTER, context.log
    )
    if checked.cursor is not None:
        context.update_cursor(checked.cursor)
    quiet = f"no streak of {SKIP_ALERT_AFTER} skipped runs"
    return _summary(checked.fired, checked.problems, quiet, checked.still)


# ------------------------------------------------------------------ stale lock


def stale_reason(
    instance: DagsterInstance, reminders_db: RemindersDatabaseResource, holder: LockHolder
) -> str | None:
    """Why the holder's run is not in progress, or None when it is (or may be)."""
    if holder.since is not None:
        age = now_utc() - holder.since
        if age < timedelta(seconds=STALE_LOCK_GRACE_S):
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
) -> Checked:
    problems: list[str] = []
    holder = _try("reading the lock holder", reminders_db.lock_holder, problems)
    if holder is None:
        return Checked([], problems, ("" if not problems else cursor))
    key = f"{holder.pid}@{holder.since.isoformat() if holder.since else '?'}"
    if key == cursor:
        # The very session alerted on still holds the lock: it is still stale.
        return Checked([], problems, cursor, [f"stale lock held by {holder.describe()}"])
    why = _try("judging the lock holder", lambda: stale_reason(instance, reminders_db, holder), [])
    if why is None:
        return Checked([], problems, cursor)
    # The run may have just let go; alert only if the very same session still holds it.
    again = _try("reading the lock holder", reminders_db.lock_holder, problems)
    if again is None or (again.pid, again.since) != (holder.pid, holder.since):
        return Checked([], problems, cursor)
    link = alerts.run_url(holder.run_id) if holder.run_id else None
    alerts.send(stale_lock_alert(holder=holder, why=why, link=link), logger=logger)
    return Checked([f"stale lock held by pid {holder.pid} ({why})"], problems, key)


@sensor(
    name="stale_lock_sensor",
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=SENSOR_STATUS,
    description=(
        "Watches the reminders run lock (pg_locks): alerts once per session holding it whose"
        f" run is finished, failed or unknown to Dagster, after a {STALE_LOCK_GRACE_S} s grace"
        f" (REMINDERS_STALE_LOCK_GRACE_S). Never terminates the session. {alert_destinations()}"
    ),
)
def stale_lock_sensor(
    context: SensorEvaluationContext,
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
) -> SkipReason:
    checked = check_stale_lock(context.instance, reminders_db, alerts, context.cursor, context.log)
    if checked.cursor is not None:
        context.update_cursor(checked.cursor)
    quiet = "the run lock is free or held by a run in progress"
    return _summary(checked.fired, checked.problems, quiet, checked.still)


# ------------------------------------------------------------------ zombie runs

# Off switch: REMINDERS_ZOMBIE_SENSOR=off. The sensor then starts stopped and, if
# turned on in the UI anyway, does nothing, so a deployment can opt out for sure.
ZOMBIE_SENSOR_ON = os.environ.get("REMINDERS_ZOMBIE_SENSOR", "on").strip().lower() not in (
    "off",
    "false",
    "0",
    "no",
)
# How long a run in progress may have no reminders session before it is failed.
# Far above the seconds a live run spends without one (zombies.py); 10 s at least.
ZOMBIE_GRACE_S = env_int("REMINDERS_ZOMBIE_GRACE_S", 300, 10, 24 * 60 * 60)
ZOMBIE_INTERVAL_S = env_int("REMINDERS_ZOMBIE_INTERVAL_S", SENSOR_INTERVAL_S, 5, 3600)
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
) -> Checked:
    """Fail and alert once per zombie run.

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
        return Checked([], problems, json.dumps({"missing": {}}))
    # Without the heartbeat there is no verdict: keep the cursor as it was.
    live = _try(
        "reading the reminders sessions",
        lambda: live_run_ids(reminders_db.resolved_database_url()),
        problems,
    )
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
        fired.append(f"run {run_id} had no session for {zombie.missing_for(now)}: marked failed")
    new_cursor = {run_id: ts.isoformat() for run_id, ts in verdict.missing_since.items()}
    return Checked(fired, problems, json.dumps({"missing": new_cursor}))


def _parse_time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@sensor(
    name="zombie_run_sensor",
    minimum_interval_seconds=ZOMBIE_INTERVAL_S,
    default_status=SENSOR_STATUS if ZOMBIE_SENSOR_ON else DefaultSensorStatus.STOPPED,
    description=(
        "Watches reminders runs shown STARTED or STARTING: one with no reminders database"
        f" session for {ZOMBIE_GRACE_S} s (REMINDERS_ZOMBIE_GRACE_S) has lost its worker; it is"
        " marked failed, which frees the run queue, and alerted once."
        f" Off with REMINDERS_ZOMBIE_SENSOR=off. {alert_destinations()}"
    ),
)
def zombie_run_sensor(
    context: SensorEvaluationContext,
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
) -> SkipReason:
    if not ZOMBIE_SENSOR_ON:
        return SkipReason("off: REMINDERS_ZOMBIE_SENSOR=off")
    checked = check_zombie_runs(
        context.instance,
        reminders_db,
        alerts,
        context.cursor,
        timedelta(seconds=ZOMBIE_GRACE_S),
        context.log,
    )
    if checked.cursor is not None:
        context.update_cursor(checked.cursor)
    return _summary(checked.fired, checked.problems, "no zombie run", checked.still)


all_sensors = [
    long_running_reminders_sensor,
    reminders_run_failure_sensor,
    repeated_skips_sensor,
    stale_lock_sensor,
    zombie_run_sensor,
]
