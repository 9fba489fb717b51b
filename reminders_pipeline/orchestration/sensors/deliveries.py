"""delivery_health_sensor: dead deliveries appeared, or the oldest pending delivery is
older than REMINDERS_DELIVERY_MAX_PENDING_AGE_S. Once per dead batch; once per backlog."""

import json
from datetime import timedelta

from dagster import SensorEvaluationContext

from reminders_pipeline.alerts.messages import (
    dead_deliveries_alert,
    duration,
    elapsed_for,
    pending_deliveries_alert,
)
from reminders_pipeline.core.sensor_reads import SensorReads
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.sensors.common import (
    Checked,
    alert_destinations,
    alerting_sensor,
    attempt,
    load_cursor,
)
from reminders_pipeline.settings.delivery import DELIVERY_MAX_PENDING_AGE_S


def check_deliveries(
    reads: SensorReads,
    alerts: AlertResource,
    cursor: str | None,
    max_age: timedelta,
    logger: object = None,
) -> Checked:
    state = load_cursor(cursor)
    # The place is (finished_at, id) of the latest dead delivery: ids die in any order.
    first = "last_dead_at" not in state
    after_at, after_id = state.get("last_dead_at"), state.get("last_dead_id") or 0
    problems: list[str] = []
    row = attempt(
        "reading the delivery outbox", lambda: reads.delivery_health(after_at, after_id), problems
    )
    if row is None:
        return Checked([], problems, cursor)
    fired: list[str] = []
    still: list[str] = []
    last_at = row["last_dead_at"].isoformat() if row["last_dead_at"] else None
    if first:  # first evaluation: dead rows from before the sensor are old news
        after_at, after_id = last_at, row["last_dead_id"] or 0
    elif row["new_dead"]:
        alerts.send(
            dead_deliveries_alert(
                count=row["new_dead"],
                last_id=row["last_dead_id"],
                recent_errors=row["recent_errors"],
            ),
            logger=logger,
        )
        fired.append(f"{row['new_dead']} dead deliveries")
        after_at, after_id = last_at, row["last_dead_id"]
    oldest = timedelta(seconds=row["oldest_pending_s"] or 0)
    backlog = oldest > max_age
    if backlog and state.get("backlog"):
        still.append(f"oldest pending delivery {elapsed_for(oldest, max_age)}")
    elif backlog:
        alerts.send(pending_deliveries_alert(oldest=oldest, threshold=max_age), logger=logger)
        fired.append(f"oldest pending delivery {elapsed_for(oldest, max_age)}")
    return Checked(
        fired,
        problems,
        json.dumps({"last_dead_at": after_at, "last_dead_id": after_id, "backlog": backlog}),
        still,
    )


def max_pending_age() -> timedelta:
    return timedelta(seconds=DELIVERY_MAX_PENDING_AGE_S.get())


@alerting_sensor(
    description=(
        "Watches the delivery outbox: alerts when deliveries become dead, and when the oldest"
        f" pending one is older than {duration(max_pending_age())}"
        f" (REMINDERS_DELIVERY_MAX_PENDING_AGE_S). {alert_destinations()}"
    ),
)
def delivery_health_sensor(
    context: SensorEvaluationContext, reads: SensorReads, alerts: AlertResource
) -> Checked:
    checked = check_deliveries(reads, alerts, context.cursor, max_pending_age(), context.log)
    return checked.saying("no new dead delivery, no old pending one")
