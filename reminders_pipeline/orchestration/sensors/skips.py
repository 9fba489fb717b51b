"""repeated_skips_sensor: REMINDERS_SKIP_ALERT_AFTER skipped runs in a row, once per streak."""

from typing import Any

from dagster import SensorEvaluationContext

from reminders_pipeline import settings
from reminders_pipeline.alerts.messages import repeated_skips_alert
from reminders_pipeline.core.sensor_reads import SensorReads
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.sensors.common import (
    Checked,
    alert_destinations,
    alerting_sensor,
    attempt,
)


def check_repeated_skips(
    reads: SensorReads,
    alerts: AlertResource,
    cursor: str | None,
    threshold: int,
    logger: Any = None,
) -> Checked:
    """Alert once per streak of `threshold` or more skipped runs, newest rows first."""
    problems: list[str] = []
    limit = max(threshold, 50)
    rows = attempt("reading reminder_runs", lambda: reads.latest_runs(limit), problems)
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
    # A streak longer than the rows read began before them: its first row, the one
    # alerted on, is older than any row read, and every new skip moves the window.
    longer = len(streak) == limit and (cursor or "").isdigit() and int(cursor) < first["id"]
    if cursor == streak_id or longer:
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
    holder = attempt("reading the lock holder", reads.lock_holder, problems)
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


@alerting_sensor(
    description=(
        "Watches the latest rows of reminder_runs: alerts once per streak of"
        f" {settings.SKIP_ALERT_AFTER.get()} or more skipped runs in a row"
        f" (REMINDERS_SKIP_ALERT_AFTER), naming who holds the lock. {alert_destinations()}"
    ),
)
def repeated_skips_sensor(
    context: SensorEvaluationContext, reads: SensorReads, alerts: AlertResource
) -> Checked:
    threshold = settings.SKIP_ALERT_AFTER.get()
    checked = check_repeated_skips(reads, alerts, context.cursor, threshold, context.log)
    return checked.saying(f"no streak of {threshold} skipped runs")
