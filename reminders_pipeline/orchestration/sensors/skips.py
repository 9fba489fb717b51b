"""repeated_skips_sensor: REMINDERS_SKIP_ALERT_AFTER skipped runs in a row, once per streak."""

from typing import Any

from dagster import SensorEvaluationContext

from reminders_pipeline import settings
from reminders_pipeline.alerts.messages import repeated_skips_alert
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.resources import RemindersDatabaseResource
from reminders_pipeline.orchestration.sensors.common import Outcome, alerting_sensor, attempt


def check_repeated_skips(
    reminders_db: RemindersDatabaseResource,
    alerts: AlertResource,
    cursor: str | None,
    threshold: int,
    logger: Any = None,
) -> tuple[list[str], list[str], str | None]:
    """Alert once per streak of `threshold` or more skipped runs, newest rows first."""
    problems: list[str] = []
    rows = attempt(
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
    holder = attempt("reading the lock holder", reminders_db.lock_holder, problems)
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


def _evaluate(
    context: SensorEvaluationContext, reminders_db: RemindersDatabaseResource, alerts: AlertResource
) -> Outcome:
    fired, problems, cursor = check_repeated_skips(
        reminders_db, alerts, context.cursor, settings.SKIP_ALERT_AFTER.get(), context.log
    )
    return Outcome(fired, problems, cursor, "no skip streak")


repeated_skips_sensor = alerting_sensor(
    name="repeated_skips_sensor",
    description=f"Alerts when {settings.SKIP_ALERT_AFTER.get()} or more reminders runs in a row"
    " were skipped.",
    evaluate=_evaluate,
)
