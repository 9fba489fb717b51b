"""Demo data: the requested size, a realistic spread, and roughly the requested due share."""

from __future__ import annotations

from datetime import date

import pytest

from reminders_pipeline.core.due import ReminderSchedulerService
from reminders_pipeline.db.seed import seed
from reminders_pipeline.errors import ConfigError
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.data import db_rows

TODAY = date(2026, 11, 29)


def test_seed_writes_assignments_activities_and_the_due_share(db):
    result = seed(db, assignments=5000, due_fraction=0.3, today=TODAY, default_interval_days=10)

    assert result.assignments == 5000
    [counts] = db_rows(
        db,
        "SELECT (SELECT count(*) FROM assignments) AS assignments, "
        "(SELECT count(*) FROM activities) AS activities, "
        "(SELECT count(DISTINCT status) FROM assignments) AS statuses, "
        "(SELECT count(*) FROM assignments a JOIN activities x ON x.assignment_id = a.id "
        " WHERE x.occurred_on <> a.last_contact_date) AS mismatched",
    )
    assert counts == {"assignments": 5000, "activities": 5000, "statuses": 3, "mismatched": 0}
    selection = ReminderSchedulerService(db, ReminderSettings()).select_due(TODAY)
    assert 0.25 < selection.due / selection.active < 0.35


def test_reset_empties_before_seeding(db):
    seed(db, assignments=100, due_fraction=0.5, today=TODAY, default_interval_days=10)
    seed(db, assignments=50, due_fraction=0.5, today=TODAY, default_interval_days=10, reset=True)
    [row] = db_rows(db, "SELECT count(*) AS n, min(id) AS first FROM assignments")
    assert row == {"n": 50, "first": 1}


@pytest.mark.parametrize(("count", "fraction"), [(-1, 0.1), (10, 1.5)])
def test_bad_arguments_are_refused_before_writing(db, count, fraction):
    with pytest.raises(ConfigError):
        seed(db, assignments=count, due_fraction=fraction, today=TODAY, default_interval_days=10)
    assert db_rows(db, "SELECT count(*) AS n FROM mentors") == [{"n": 0}]


def test_the_status_spread_goes_by_position_so_one_assignment_is_due(db):
    """The README seeds one assignment with --due-fraction 1 and shows "1 due": the
    first of a seed is always active (88 of each 100 are)."""
    seed(db, assignments=1, due_fraction=1.0, today=TODAY, default_interval_days=10)
    assert ReminderSchedulerService(db, ReminderSettings()).select_due(TODAY).due == 1
    seed(db, assignments=200, due_fraction=0.5, today=TODAY, default_interval_days=10, reset=True)
    rows = db_rows(db, "SELECT status, count(*) AS n FROM assignments GROUP BY 1 ORDER BY 1")
    assert rows == [
        {"status": "active", "n": 176},
        {"status": "closed", "n": 10},
        {"status": "paused", "n": 14},
    ]
