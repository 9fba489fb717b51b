"""The admin API's "next reminder due" date, in its pure form."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.helpers.due_rule import next_reminder_due_on, reminder_due_on

LAST = date(2026, 3, 1)


@pytest.mark.parametrize(
    ("silent_days", "expected_offset"),
    [
        (0, 10),  # just contacted: one interval away
        (9, 10),
        (10, 10),  # due today: still next until today's run is done
        (11, 20),
        (20, 20),
        (29, 30),
        (30, 30),
        (31, None),  # three reminders used: nothing more for this silence
    ],
)
def test_next_reminder_due_on(silent_days, expected_offset):
    as_of = LAST + timedelta(days=silent_days)
    got = next_reminder_due_on(LAST, 10, as_of, 3)
    assert got == (None if expected_offset is None else LAST + timedelta(days=expected_offset))


def test_next_reminder_agrees_with_the_due_rule_on_the_day_it_falls():
    for silent_days in range(0, 40):
        as_of = LAST + timedelta(days=silent_days)
        nxt = next_reminder_due_on(LAST, 7, as_of, 3)
        if nxt is not None:
            due = reminder_due_on(LAST, 7, nxt, 3)
            assert due is not None and due[1] == nxt
