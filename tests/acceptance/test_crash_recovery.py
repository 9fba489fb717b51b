"""A run killed with SIGKILL in the middle of dispatch leaves no lock and no gap behind."""

from __future__ import annotations

import signal

import pytest

from tests.helpers.runs import (
    assert_notifications_are_exactly,
    expected_due_set,
    hold_one_reminder,
    lock_holder,
    notification_keys,
    run_rows,
    seed_assignments,
    today,
    wait_for,
    wait_for_run_at_the_gate,
)

pytestmark = pytest.mark.acceptance

ASSIGNMENTS = 200_000
BATCH_SIZE = 2_000


def test_killed_run_leaves_no_lock_and_next_run_marks_it_abandoned(reminders_cli, db, db_url):
    as_of = today()
    seed_assignments(db, ASSIGNMENTS, 0.3, as_of)
    expected = expected_due_set(db, as_of)
    # The run commits the batches before the held reminder, then waits in dispatch.
    blocker = hold_one_reminder(db_url, expected)
    try:
        victim = reminders_cli.start(
            "run", "--json", "--as-of", as_of.isoformat(), env={"REMINDERS_BATCH_SIZE": "2000"}
        )
        holder, _ = wait_for_run_at_the_gate(db_url, victim)
        committed = len(notification_keys(db))
        [running] = run_rows(db)
        assert running["status"] == "running"
        assert running["lock_backend_pid"] == holder["pid"]
        assert 0 < committed < len(expected), committed

        victim.kill(signal.SIGKILL)
        assert victim.popen.returncode == -signal.SIGKILL

        # PostgreSQL drops the session lock as soon as the dead client's socket
        # closes: no keepalive timeout, no cleanup by anyone.
        wait_for(lambda: lock_holder(db_url) is None, timeout=5, what="the lock to be dropped")
        status = reminders_cli("lock", "status", "--json")
        assert status.returncode == 0, status.describe()
        assert status.json()["held"] is False
    finally:
        blocker.rollback()
        blocker.close()

    recovery = reminders_cli("run", "--json", "--as-of", as_of.isoformat())

    assert recovery.returncode == 0, recovery.describe()
    summary = recovery.json()
    assert summary["status"] == "success", recovery.describe()
    # What the killed run committed stays, exactly once; the rest is created now.
    assert summary["selected"] == len(expected)
    assert summary["already_existed"] == committed
    assert summary["created"] == len(expected) - committed
    dead, recovered = run_rows(db)
    assert dead["id"] == running["id"] and dead["status"] == "abandoned"
    assert dead["finished_at"] is not None and dead["error"]
    assert recovered["status"] == "success"
    assert recovered["dagster_run_id"] == summary["run_id"]
    assert recovered["started_at"] >= dead["finished_at"]  # marked by the run that took over
    assert_notifications_are_exactly(db, expected)
    assert lock_holder(db_url) is None
