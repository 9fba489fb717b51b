"""A run's outcome and the lock holder: one typed record each, one JSON shape each."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from reminders_pipeline.core.runlog import RunSummary
from reminders_pipeline.db.lock_holder import LockHolder, lock_state

SINCE = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
SKIPPED_ROW = {
    "id": 7,
    "status": "skipped",
    "as_of": date(2026, 3, 1),
    "dagster_run_id": "r-2",
    "duration_s": 0.01234,
    "selected": None,
    "created": None,
    "already_existed": None,
    "error": "another run holds the run lock",
    "blocked_by_pid": 4242,
    "blocked_by_application_name": "reminders-run:r-1",
    "blocked_by_run_id": "r-1",
    "blocked_since": SINCE,
    "lock_scope": "transaction",
}


def test_a_skipped_row_becomes_the_cli_json_shape() -> None:
    data = RunSummary.from_row(SKIPPED_ROW).to_dict()
    assert json.loads(json.dumps(data)) == data  # plain JSON, nothing to convert
    assert data == {
        "status": "skipped",
        "run_id": "r-2",
        "as_of": "2026-03-01",
        "selected": 0,
        "created": 0,
        "already_existed": 0,
        "duration_s": 0.012,
        "reminder_runs_id": 7,
        "blocked_by": {
            "pid": 4242,
            "application_name": "reminders-run:r-1",
            "since": "2026-03-01T06:00:00+00:00",
            "client_addr": None,
            "run_id": "r-1",
        },
        "error": "another run holds the run lock",
        "lock_scope": "transaction",
    }


def test_a_row_from_before_lock_scope_was_recorded_is_a_session_run() -> None:
    row = {key: value for key, value in SKIPPED_ROW.items() if key != "lock_scope"}
    assert RunSummary.from_row(row).to_dict()["lock_scope"] == "session"


def test_only_a_skipped_row_has_a_holder() -> None:
    row = {**SKIPPED_ROW, "status": "success", "blocked_by_pid": None}
    assert RunSummary.from_row(row).holder is None


def test_lock_state_uses_the_holder_shape() -> None:
    holder = LockHolder(1, "reminders-run:r", SINCE, "10.0.0.1", "r")
    assert lock_state(holder)["holder"] == holder.to_dict()
    assert lock_state(None) == {"lock_key": [0x52454D49, 1], "held": False, "holder": None}
