"""The due rule in its pure form (the SQL applies the same rule set-based)."""

from datetime import date, timedelta

import pytest

from tests.helpers.due_rule import reminder_due_on

LAST = date(2026, 3, 1)


@pytest.mark.parametrize(
    ("days_silent", "expected"),
    [
        (0, None),
        (9, None),
        (10, (1, LAST + timedelta(days=10))),
        (19, (1, LAST + timedelta(days=10))),
        (20, (2, LAST + timedelta(days=20))),
        (30, (3, LAST + timedelta(days=30))),
        # capped at the maximum per silence: no flood after an outage
        (95, (3, LAST + timedelta(days=30))),
    ],
)
def test_latest_reminder_due_on_or_before_as_of(days_silent, expected):
    as_of = LAST + timedelta(days=days_silent)
    assert reminder_due_on(LAST, 10, as_of, max_per_silence=3) == expected


def test_contact_after_as_of_is_not_due():
    assert reminder_due_on(LAST, 10, LAST - timedelta(days=30), 3) is None


def test_interval_override_applies():
    assert reminder_due_on(LAST, 7, LAST + timedelta(days=7), 3) == (1, LAST + timedelta(days=7))
