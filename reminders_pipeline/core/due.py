"""ReminderSchedulerService: which assignments are due on a given date.

The due rule: an 'active' assignment is due on date D when D - last_contact_date
reaches its interval (its own, or the configured default). While the silence
lasts, a reminder repeats every interval, up to a maximum per silence. The rule
itself is SQL, the functions reminder_due() and next_reminder_due_on() (migration
0005), which the count, dispatch and admin queries call: applied set-based, in the
database, in one place.

Its Python twin, for tests computing what a run must create, is
tests/helpers/due_rule.py: no production path needs one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from reminders_pipeline.db.connector import Database
from reminders_pipeline.settings import ReminderSettings


@dataclass(frozen=True)
class DueSelection:
    """What a run for `as_of` will work through. Counts are a snapshot; dispatch recounts."""

    as_of: date
    due: int
    active: int


class ReminderSchedulerService:
    def __init__(self, db: Database, settings: ReminderSettings) -> None:
        self.db = db
        self.settings = settings

    def select_due(self, as_of: date) -> DueSelection:
        row = self.db.fetch_one(
            "count_due_assignments",
            as_of=as_of,
            default_interval=self.settings.default_interval_days,
            max_per_silence=self.settings.max_reminders_per_silence,
        )
        assert row is not None
        return DueSelection(as_of=as_of, due=row["due"], active=row["active"])
