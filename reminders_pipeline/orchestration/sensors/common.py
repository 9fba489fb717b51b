"""What every reminders sensor shares: one decorator -> check -> cursor -> summary shape.

Each sensor is an evaluation that returns what it alerted, what went wrong and
its new cursor (`Checked`); @alerting_sensor makes it a Dagster sensor of its name
that stores the cursor and reports a one-line summary in the UI's tick history. No
`from __future__ import annotations` here: Dagster reads the sensor function's
annotations to inject resources.
"""

import json
import logging
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from dagster import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from reminders_pipeline import settings
from reminders_pipeline.core.sensor_reads import SensorReads
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.resources import RemindersDatabaseResource

log = logging.getLogger("reminders_pipeline.orchestration.sensors")
T = TypeVar("T")

# Set on a run that zombie_run_sensor failed (its alert already went out).
ZOMBIE_TAG = "reminders/failed_as_zombie"


class Checked(NamedTuple):
    """What one evaluation of a check found; the sensor's evaluate adds `quiet`."""

    fired: list[str]  # alerts sent now
    problems: list[str]  # what could not be checked
    cursor: str | None  # None: leave the cursor as it is
    still: list[str] = []  # conditions alerted before that still hold
    quiet: str = ""  # what the tick says when nothing fired and nothing still holds

    def saying(self, quiet: str) -> "Checked":
        return self._replace(quiet=quiet)


def sensor_status() -> DefaultSensorStatus:
    """The sensors' status at first deployment (REMINDERS_SENSORS_DEFAULT_STATUS)."""
    return DefaultSensorStatus(settings.SENSORS_DEFAULT_STATUS.get().upper())


def load_cursor(cursor: str | None) -> dict[str, Any]:
    try:
        value = json.loads(cursor) if cursor else {}
    except json.JSONDecodeError:
        value = {}
    return value if isinstance(value, dict) else {}


def attempt(what: str, fn: Callable[[], T], problems: list[str]) -> T | None:
    """A check that cannot reach the reminders database reports it and carries on."""
    try:
        return fn()
    except Exception as exc:
        log.exception("%s failed", what)
        problems.append(f"{what} failed: {type(exc).__name__}: {exc}")
        return None


def summary(
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
    where = ["the sensor's log"]
    if settings.ALERT_SLACK_WEBHOOK_URL.is_set():
        where.append(f"the Slack webhook ({settings.ALERT_SLACK_WEBHOOK_URL.name})")
    if settings.ALERT_WEBHOOK_URL.is_set():
        where.append(f"the JSON webhook ({settings.ALERT_WEBHOOK_URL.name})")
    recipients = settings.ALERT_EMAIL_TO.get()
    if settings.ALERT_SMTP_HOST.is_set() and recipients:
        where.append(f"email to {', '.join(recipients)}")
    if len(where) == 1:
        where[0] += " only (no REMINDERS_ALERT_* destination set)"
    return "Alerts go to " + ", ".join(where) + "."


Evaluate = Callable[[SensorEvaluationContext, SensorReads, AlertResource], Checked]


def alerting_sensor(
    *,
    description: str,
    interval_s: int | None = None,
    default_status: DefaultSensorStatus | None = None,
) -> Callable[[Evaluate], SensorDefinition]:
    """Make the decorated evaluation a sensor of its name that keeps its cursor and
    summarises the tick.

    The evaluation reads the reminders database through the SensorReads port only:
    the resource bound as `reminders_db`, or an in-memory fake in the unit tests.
    """

    def decorate(evaluate: Evaluate) -> SensorDefinition:
        @sensor(
            name=evaluate.__name__,
            minimum_interval_seconds=interval_s or settings.SENSOR_INTERVAL_S.get(),
            default_status=default_status or sensor_status(),
            description=description,
        )
        def _alerting_sensor(
            context: SensorEvaluationContext,
            reminders_db: RemindersDatabaseResource,
            alerts: AlertResource,
        ) -> SkipReason:
            outcome = evaluate(context, reminders_db, alerts)
            if outcome.cursor is not None:
                context.update_cursor(outcome.cursor)
            return summary(outcome.fired, outcome.problems, outcome.quiet, outcome.still)

        return _alerting_sensor

    return decorate
