"""The due rule's Python twin, for tests computing what a run must create.

The rule itself is SQL (reminder_due() and next_reminder_due_on(), migrations 0004
and 0005; core/due.py says how the package uses it). No production path needs a
Python copy; tests/integration/test_due_rule_sql.py holds these two equal to the SQL
functions over a grid of dates, intervals and caps.
"""

from __future__ import annotations

from datetime import date, timedelta


def reminder_due_on(
    last_contact: date,
    interval_days: int,
    as_of: date,
    max_per_silence: int,
    carried_for: date | None = None,
    carried: int = 0,
    carried_last_sent_on: date | None = None,
) -> tuple[int, date] | None:
    """The latest reminder due on or before as_of: (sequence, due date), or None.

    `carried`: reminders a correction carried into the silence starting on
    `carried_for` (they hold the numbers up to it), the latest sent on
    `carried_last_sent_on` (the next one waits an interval after it); ignored
    when the silence starts on another day. The Python twin of SQL
    reminder_due() (migrations 0004, 0005).
    """
    if carried_for != last_contact:
        carried, carried_last_sent_on = 0, None
    silent_days = (as_of - last_contact).days
    if silent_days < interval_days:
        return None
    sequence = min(silent_days // interval_days, max_per_silence)
    if sequence <= carried:
        return None
    if carried_last_sent_on is not None and as_of < carried_last_sent_on + timedelta(
        days=interval_days
    ):
        return None
    return sequence, last_contact + timedelta(days=sequence * interval_days)


def next_reminder_due_on(
    last_contact: date,
    interval_days: int,
    as_of: date,
    max_per_silence: int,
    carried_for: date | None = None,
    carried: int = 0,
    carried_last_sent_on: date | None = None,
) -> date | None:
    """The due date of the next reminder of this silence on or after as_of, or None.

    None when the silence has already used its reminders before as_of. A
    reminder due today counts as next: today's run may not have happened yet.
    For active assignments; others get no reminders at all.
    `carried_for`, `carried` and `carried_last_sent_on` as for reminder_due_on.
    """
    if carried_for != last_contact:
        carried, carried_last_sent_on = 0, None
    silent_days = (as_of - last_contact).days
    sequence = max(1, carried + 1, -(-silent_days // interval_days))  # ceiling division
    if sequence > max_per_silence:
        return None
    due = last_contact + timedelta(days=sequence * interval_days)
    if carried_last_sent_on is not None:
        due = max(due, carried_last_sent_on + timedelta(days=interval_days))
    return due
