"""ContactRegistrationService: the four ways a contact activity is registered.

Each path records itself in activities.registered_via. None of them touches
assignments.last_contact_date: the triggers of migration 0002 keep it equal to
the latest contact, whatever writes the activity row, so the rule lives in one
place. All paths share one set-based statement (register_contacts) that checks
and inserts in one go, all or nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from reminders_pipeline.db.connector import Database
from reminders_pipeline.errors import ActivityRefused, ConfigError
from reminders_pipeline.settings import ReminderSettings

DIRECT = "direct"
PROXY = "proxy"
BULK = "bulk"
COORDINATOR_PROXY = "coordinator_proxy"

# One statement carries a whole bulk registration; this bounds its memory and
# lock footprint (and the time other registrations of the same assignments wait).
MAX_BULK = 100_000

_PROBLEMS = {
    "missing_value": "assignment id and date are required",
    "unknown_assignment": "no such assignment",
    "closed_assignment": "the assignment is closed",
    "not_the_mentor": "the mentor is not this assignment's mentor",
    "future_date": "the date is in the future",
    "before_assignment_start": "the date is before the assignment started",
}


@dataclass(frozen=True)
class Contact:
    """One contact to register: which assignment, and when it happened."""

    assignment_id: int
    occurred_on: date


def _describe(problem: dict[str, Any]) -> str:
    what = _PROBLEMS.get(problem["problem"], problem["problem"])
    return f"assignment {problem['assignment_id']} on {problem['occurred_on']}: {what}"


class ContactRegistrationService:
    def __init__(self, db: Database, settings: ReminderSettings) -> None:
        self.db = db
        self.settings = settings

    def register_direct(self, assignment_id: int, occurred_on: date, *, mentor_id: int) -> int:
        """The mentor registers their own contact; refused unless it is their assignment."""
        return self._register_one(
            assignment_id, occurred_on, DIRECT, f"mentor:{mentor_id}", mentor_id=mentor_id
        )

    def register_proxy(self, assignment_id: int, occurred_on: date, *, registered_by: str) -> int:
        """Someone registers a contact on the mentor's behalf."""
        return self._register_one(assignment_id, occurred_on, PROXY, _who(registered_by))

    def register_coordinator_proxy(
        self, assignment_id: int, occurred_on: date, *, coordinator: str
    ) -> int:
        """A coordinator registers a contact for one mentor."""
        return self._register_one(assignment_id, occurred_on, COORDINATOR_PROXY, _who(coordinator))

    def register_bulk(self, contacts: Sequence[Contact], *, coordinator: str) -> list[int]:
        """A coordinator registers many contacts at once: one statement, all or nothing;
        the new activities' ids."""
        if len(contacts) > MAX_BULK:
            raise ConfigError(
                f"a bulk registration takes at most {MAX_BULK} contacts, got {len(contacts)}"
            )
        return self._register(contacts, BULK, _who(coordinator))

    def _register_one(
        self,
        assignment_id: int,
        occurred_on: date,
        via: str,
        registered_by: str,
        mentor_id: int | None = None,
    ) -> int:
        result = self._register(
            [Contact(assignment_id, occurred_on)], via, registered_by, mentor_id=mentor_id
        )
        return result[0]

    def _register(
        self,
        contacts: Sequence[Contact],
        via: str,
        registered_by: str,
        mentor_id: int | None = None,
    ) -> list[int]:
        if not contacts:
            return []
        with self.db.connection() as conn:
            row = conn.one(
                "register_contacts",
                assignment_ids=[c.assignment_id for c in contacts],
                occurred_on=[c.occurred_on for c in contacts],
                mentor_id=mentor_id,
                today=self.settings.today(),  # the organisation's today, not the server's
                registered_via=via,
                registered_by=registered_by,
            )
            assert row is not None
            if row["refused"]:
                # Raised inside the block: the transaction rolls back, locks go at once.
                raise self._refusal(row, len(contacts))
        return list(row["activity_ids"])

    @staticmethod
    def _refusal(row: dict[str, Any], attempted: int) -> ActivityRefused:
        problems = row["problems"]
        listed = "; ".join(_describe(p) for p in problems)
        if attempted == 1:
            message = f"contact not registered: {listed}"
        else:
            more = row["refused"] - len(problems)
            message = (
                f"{row['refused']} of {attempted} contacts refused, nothing registered: {listed}"
                + (f"; and {more} more" if more else "")
            )
        return ActivityRefused(message, problems, row["refused"])


def _who(name: str) -> str:
    name = name.strip()
    if not name:
        raise ConfigError("who registers the contact is required")
    return name
