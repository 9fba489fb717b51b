"""AssignmentAdminService: what the admin API shows and corrects (no web framework here).

A manual correction writes assignments.last_contact_date directly, together
with its admin_audit row, in one transaction that holds the assignment's row
lock: two corrections of one assignment run one after the other, each audits
the value the previous one left, and the last one wins. The activity triggers
only act when activities change, so a later contact still moves the date
forward and the audit keeps the manual value (docs/decisions/contact-reset-guarantee.md).
The same statement carries the reminders sent since the corrected date into the
silence it starts, so a correction never resends (Decision 4 there).
"""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Any

from reminders_pipeline.db.connector import Database, Session
from reminders_pipeline.db.lock_keys import DISPATCH_LOCK
from reminders_pipeline.errors import AssignmentClosed, AssignmentNotFound, CorrectionRefused
from reminders_pipeline.settings import ReminderSettings

REASON_MAX_LENGTH = 500
RECENT_REMINDERS = 10
RECENT_ACTIVITIES = 10
RECENT_CORRECTIONS = 5


# Control (Cc), format (Cf: bidi overrides and isolates, zero-width spaces and
# joiners, soft hyphen), surrogates, private use, line and paragraph separators:
# what can hide or reorder text in the audit, a terminal or a log line.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def check_reason(reason: str) -> str:
    """A reason is required, one line of visible plain text, at most 500 characters once trimmed."""
    reason = reason.strip()
    if not reason:
        raise CorrectionRefused("reason", "is required")
    if len(reason) > REASON_MAX_LENGTH:
        raise CorrectionRefused("reason", f"must be at most {REASON_MAX_LENGTH} characters")
    for ch in reason:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            raise CorrectionRefused(
                "reason",
                f"must not contain control, bidi or zero-width characters (U+{ord(ch):04X})",
            )
    return reason


class AssignmentAdminService:
    def __init__(self, db: Database, settings: ReminderSettings) -> None:
        self.db = db
        self.settings = settings

    def assignment(self, assignment_id: int) -> dict[str, Any]:
        """The assignment, its next reminder due date and its recent history."""
        with self.db.connection() as conn:
            return self._view(conn, assignment_id)

    def correct_last_contact_date(
        self,
        assignment_id: int,
        new_value: date,
        reason: str,
        *,
        token_name: str,
        allow_closed: bool = False,
    ) -> dict[str, Any]:
        """Set last_contact_date by hand and audit it; returns the assignment and the audit row.

        A closed assignment is refused (AssignmentClosed), as contact registration
        refuses it, unless `allow_closed`; a paused one is accepted, as there.
        """
        reason = check_reason(reason)
        today = self.settings.today()
        if new_value > today:
            raise CorrectionRefused(
                "last_contact_date", f"must not be in the future (today is {today.isoformat()})"
            )
        with self.db.connection() as conn:
            # No dispatch batch in flight: the count below sees all they inserted.
            conn.run("admin_correction_guard", **DISPATCH_LOCK.params())
            locked = conn.one("admin_lock_assignment", id=assignment_id)
            if locked is None:
                raise AssignmentNotFound(assignment_id)
            if locked["status"] == "closed" and not allow_closed:
                raise AssignmentClosed(assignment_id)
            if new_value < locked["started_on"]:
                raise CorrectionRefused(
                    "last_contact_date",
                    "must not be before the assignment started "
                    f"({locked['started_on'].isoformat()})",
                )
            audit = conn.one(
                "admin_correct_last_contact_date",
                assignment_id=assignment_id,
                old_value=locked["last_contact_date"],
                new_value=new_value,
                reason=reason,
                token_name=token_name,
            )
            assert audit is not None
            view = self._view(conn, assignment_id)
        view["correction"] = {
            "audit_id": audit["id"],
            "token_name": token_name,
            "old_value": locked["last_contact_date"],
            "new_value": new_value,
            "reason": reason,
            "at": audit["at"],
        }
        return view

    def audit(
        self, *, limit: int, offset: int, assignment_id: int | None = None
    ) -> list[dict[str, Any]]:
        return self.db.fetch_all(
            "admin_list_audit", limit=limit, offset=offset, assignment_id=assignment_id
        )

    def _view(self, conn: Session, assignment_id: int) -> dict[str, Any]:
        """The assignment, with the due rule (its SQL functions) applied today."""
        row = conn.one(
            "admin_assignment",
            id=assignment_id,
            today=self.settings.today(),
            default_interval=self.settings.default_interval_days,
            max_per_silence=self.settings.max_reminders_per_silence,
        )
        if row is None:
            raise AssignmentNotFound(assignment_id)
        today = row["today"]
        interval = row["reminder_interval_days"] or self.settings.default_interval_days
        reminders = conn.all("admin_recent_reminders", id=row["id"], limit=RECENT_REMINDERS)
        current_due = row["current_due_on"]
        created = current_due is not None and any(r["due_on"] == current_due for r in reminders)
        next_due = row["next_due_on"]
        if created and next_due == current_due:
            # Today's reminder exists already: the next one is the one after it.
            next_due = row["next_due_after_today"]
        return {
            "id": row["id"],
            "mentor_id": row["mentor_id"],
            "status": row["status"],
            "started_on": row["started_on"],
            "last_contact_date": row["last_contact_date"],
            "reminder_interval_days": interval,
            "interval_is_default": row["reminder_interval_days"] is None,
            "today": today,
            "next_reminder_due_on": next_due,
            # The reminder today's run would create (or has created), if any.
            "current_reminder": None
            if current_due is None
            else {
                "sequence": row["current_sequence"],
                "due_on": current_due,
                "created": created,
            },
            "recent_reminders": reminders,
            "recent_activities": conn.all(
                "admin_recent_activities", id=row["id"], limit=RECENT_ACTIVITIES
            ),
            "recent_corrections": conn.all(
                "admin_list_audit", assignment_id=row["id"], limit=RECENT_CORRECTIONS, offset=0
            ),
        }
