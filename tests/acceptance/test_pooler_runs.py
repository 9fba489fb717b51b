"""`reminders run` through a real PgBouncer: refused in transaction mode, one run at a
time in session mode, with the lock pid PostgreSQL itself shows.

The pooler is only between the runs and the server: every observation (pg_locks,
pg_stat_activity, the run log) is made on a direct connection.
"""

from __future__ import annotations

import pytest

from reminders_pipeline.db.lock_keys import DISPATCH_LOCK
from tests.helpers.pgbouncer import running_pgbouncer
from tests.helpers.runs import (
    advisory_locks,
    assert_no_overlapping_windows,
    assert_notifications_are_exactly,
    assert_skipped_rows_name_a_holder,
    expected_due_set,
    lock_holder,
    notification_keys,
    run_rows,
    seed_assignments,
    today,
    wait_for_run_at_the_gate,
)

# The session-pool check reads its server connection's transaction count, which
# catalog churn in any database of the server moves (each test creates one):
# .ci/run runs these with no other test at once.
pytestmark = [pytest.mark.acceptance, pytest.mark.alone]


def test_a_run_through_a_transaction_pooler_is_refused_and_leaves_nothing(
    reminders_cli, db, db_url
):
    as_of = today()
    seed_assignments(db, 300, 0.3, as_of)
    with running_pgbouncer(db_url, mode="transaction") as bouncer:
        # The session lock forced: `auto` would run the day as one SQL call instead
        # (test_run_day_pooler.py).
        pooled = {"REMINDERS_DATABASE_URL": bouncer.url(db_url), "REMINDERS_LOCK_SCOPE": "session"}
        refused = reminders_cli("run", "--json", "--as-of", as_of.isoformat(), env=pooled)

        assert refused.returncode != 0, refused.describe()
        said = refused.stdout + refused.stderr
        assert "transaction or statement mode" in said, refused.describe()
        assert "session-mode pooler" in said and "direct connection" in said
        # PgBouncer still keeps its server connections open: none of them holds a lock.
        assert advisory_locks(db_url, excluding=DISPATCH_LOCK) == []
        assert lock_holder(db_url) is None

    # The refusal is in the run log, and no work was done.
    rows = run_rows(db)
    assert [r["status"] for r in rows] == ["failed"], rows
    assert "transaction or statement mode" in rows[0]["error"]
    assert notification_keys(db) == []
    # Nothing was left behind to skip the next run: a direct run goes ahead.
    direct = reminders_cli("run", "--json", "--as-of", as_of.isoformat())
    assert direct.returncode == 0, direct.describe()
    assert direct.json()["status"] == "success", direct.describe()


def test_runs_through_a_session_pooler_take_turns_and_record_the_server_pid(
    reminders_cli, notifications_gate, db, db_url
):
    as_of = today()
    seed_assignments(db, 1_000, 0.3, as_of)
    expected = expected_due_set(db, as_of)
    assert len(expected) > 50

    with running_pgbouncer(db_url, mode="session") as bouncer:
        pooled = {"REMINDERS_DATABASE_URL": bouncer.url(db_url)}
        gate = notifications_gate()
        first = reminders_cli.start("run", "--json", "--as-of", as_of.isoformat(), env=pooled)
        holder, _ = wait_for_run_at_the_gate(db_url, first)
        # While it runs, the run log names the session pg_locks shows, not the
        # number PgBouncer made up for its client.
        running = [r for r in run_rows(db) if r["status"] == "running"]
        assert len(running) == 1
        assert running[0]["lock_backend_pid"] == holder["pid"]
        assert [row["pid"] for row in advisory_locks(db_url, excluding=DISPATCH_LOCK)] == [
            holder["pid"]
        ]

        others = [
            reminders_cli.start("run", "--json", "--as-of", as_of.isoformat(), env=pooled)
            for _ in range(3)
        ]
        skipped = [other.wait() for other in others]
        assert first.alive()
        gate.open()
        done = first.wait()

        assert done.returncode == 0, done.describe()
        assert done.json()["status"] == "success", done.describe()
        for other in skipped:
            assert other.returncode == 0, other.describe()
            assert other.json()["status"] == "skipped", other.describe()
            assert other.json()["blocked_by"]["pid"] == holder["pid"]
        assert advisory_locks(db_url, excluding=DISPATCH_LOCK) == []

    rows = run_rows(db)
    assert sorted(r["status"] for r in rows) == ["skipped"] * 3 + ["success"]
    assert_skipped_rows_name_a_holder(rows)
    assert_no_overlapping_windows(rows)
    assert_notifications_are_exactly(db, expected)
