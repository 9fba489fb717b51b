"""Corrections and runs on a fixed day, for the correction tests
(tests/integration/test_correction_reminders.py, test_correction_race.py)."""

from __future__ import annotations

from datetime import date, timedelta

from reminders_pipeline.contacts.corrections import AssignmentAdminService
from reminders_pipeline.core.services import build_reminder_run
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.data import db_rows

D = date(2026, 11, 20)  # the day of the corrections
INTERVAL = 7
START = D - timedelta(days=200)


class FixedDay(ReminderSettings):
    """The organisation's today is D + offset (corrections refuse future dates)."""

    offset = 0

    def today(self) -> date:
        return D + timedelta(days=FixedDay.offset)


SETTINGS = FixedDay(default_interval_days=INTERVAL, max_reminders_per_silence=3, batch_size=2)


def run(db_url: str, as_of: date) -> None:
    build_reminder_run(db_url, SETTINGS, dagster_run_id=f"r-{as_of}").execute(as_of)


def correct(db, assignment_id: int, new_value: date) -> None:
    AssignmentAdminService(db, SETTINGS).correct_last_contact_date(
        assignment_id, new_value, "fix the date", token_name="corrector"
    )


def sent(db, assignment_id: int) -> list[tuple[date, int]]:
    """(day of the run that created it, number) of each reminder of the assignment."""
    rows = db_rows(
        db,
        "SELECT r.as_of, n.sequence FROM notifications n JOIN reminder_runs r ON r.id = n.run_id"
        " WHERE n.assignment_id = %s ORDER BY n.id",
        (assignment_id,),
    )
    return [(r["as_of"], r["sequence"]) for r in rows]
