"""A run whose lock session dies mid-dispatch stops: its work dies with the session.

The run's dispatch INSERT waits behind a SHARE lock on notifications (the gate),
so its only batch is in flight when the test terminates the backend holding the
advisory lock. The INSERT must be that very backend (the batches run on the
lock's session), so nothing of the first run is left on the server when a second
run takes the lock; the first run records 'failed', never 'success'.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers.runs import (
    assert_notifications_are_exactly,
    backends_waiting_on,
    expected_due_set,
    lock_holder,
    run_rows,
    seed_assignments,
    today,
    wait_for,
    wait_for_run_at_the_gate,
)

pytestmark = pytest.mark.acceptance

ASSIGNMENTS = 20_000


def test_terminated_lock_session_takes_the_in_flight_batch_with_it(
    reminders_cli, notifications_gate, db, db_url
):
    as_of = today()
    seed_assignments(db, ASSIGNMENTS, 0.3, as_of)
    expected = expected_due_set(db, as_of)
    args = ("run", "--json", "--as-of", as_of.isoformat())

    gate = notifications_gate()
    first = reminders_cli.start(*args)
    holder, [waiting] = wait_for_run_at_the_gate(db_url, first)
    # The batch in flight runs on the session that holds the lock.
    assert waiting["pid"] == holder["pid"], (
        f"dispatch runs on backend {waiting['pid']}, the lock is held by {holder['pid']}"
    )

    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (holder["pid"],))
    # While the gate is still closed: nothing of the first run is left on the server.
    wait_for(
        lambda: lock_holder(db_url) is None and not backends_waiting_on(db_url, "notifications"),
        timeout=5,
        what="the lock and the first run's INSERT to be gone from the server",
    )

    # A second run takes the lock and reaches the gate too; only its INSERT waits.
    second = reminders_cli.start(*args)
    second_holder, [second_waiting] = wait_for_run_at_the_gate(db_url, second)
    assert second_waiting["pid"] == second_holder["pid"]
    gate.open()

    lost, done = first.wait(), second.wait()

    assert lost.returncode == 1, lost.describe()
    lost_summary = lost.json()
    assert lost_summary["status"] == "failed", lost.describe()
    assert "lock session was lost" in lost_summary["error"], lost_summary["error"]
    assert done.returncode == 0, done.describe()
    summary = done.json()
    assert summary["status"] == "success"
    assert (summary["selected"], summary["created"]) == (len(expected), len(expected))

    lost_row, done_row = run_rows(db)
    assert lost_row["status"] == "failed" and (lost_row["created"] or 0) == 0
    assert done_row["status"] == "success" and done_row["created"] == len(expected)
    with db.connection() as conn:
        run_ids = conn.execute("SELECT DISTINCT run_id FROM notifications").fetchall()
    # Every reminder is pinned on the run that created it.
    assert [r["run_id"] for r in run_ids] == [done_row["id"]]
    assert_notifications_are_exactly(db, expected)
    assert lock_holder(db_url) is None
