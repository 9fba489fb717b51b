"""Running the job again for the same date never sends a reminder twice."""

from __future__ import annotations

import pytest

from tests.helpers.runs import (
    assert_no_overlapping_windows,
    assert_notifications_are_exactly,
    expected_due_set,
    run_rows,
    seed_assignments,
    today,
)

pytestmark = pytest.mark.acceptance


def test_second_run_for_the_same_date_creates_no_duplicates(reminders_cli, db):
    as_of = today()
    seed_assignments(db, 3_000, 0.3, as_of)
    expected = expected_due_set(db, as_of)

    first = reminders_cli("run", "--json", "--as-of", as_of.isoformat())
    second = reminders_cli(
        "run", "--json", "--as-of", as_of.isoformat(), env={"REMINDERS_BATCH_SIZE": "700"}
    )

    for done in (first, second):
        assert done.returncode == 0, done.describe()
    a, b = first.json(), second.json()
    assert a["status"] == b["status"] == "success", (a, b)
    assert (a["created"], a["already_existed"]) == (len(expected), 0)
    # The second run finds every reminder already there and adds none.
    assert (b["selected"], b["created"], b["already_existed"]) == (len(expected), 0, len(expected))
    assert_no_overlapping_windows(run_rows(db))
    assert_notifications_are_exactly(db, expected)
