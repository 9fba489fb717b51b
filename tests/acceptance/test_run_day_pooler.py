"""`reminders run` through a real PgBouncer in transaction mode: the day as one call of
reminders_run_day() under the transaction-level lock, instead of a refusal.

The pooler is only between the runs and the server: every observation (pg_locks,
pg_stat_activity, the run log) is made on a direct connection.
"""

from __future__ import annotations

import signal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from reminders_pipeline.core.run_day import APPLICATION_NAME
from tests.helpers.pgbouncer import running_pgbouncer
from tests.helpers.runs import (
    advisory_locks,
    assert_notifications_are_exactly,
    expected_due_set,
    run_rows,
    seed_assignments,
    today,
    wait_for,
)

# The session-pool check reads its server connection's transaction count, which
# catalog churn in any database of the server moves (each test creates one):
# .ci/run runs these with no other test at once.
pytestmark = [pytest.mark.acceptance, pytest.mark.alone]

CALLERS = 8


def call_waiting_at_the_gate(url: str) -> dict[str, Any] | None:
    """The reminders_run_day() caller whose INSERT waits for the gate's SHARE lock."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT pid, xact_start FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = %s AND wait_event_type = 'Lock'",
            (APPLICATION_NAME,),
        ).fetchone()


def test_reminders_run_through_a_transaction_pooler_runs_the_day_as_one_call(
    reminders_cli, db, db_url
):
    as_of = today()
    seed_assignments(db, 1_000, 0.3, as_of)
    expected = expected_due_set(db, as_of)
    assert len(expected) > 50
    with running_pgbouncer(db_url, mode="transaction") as bouncer:
        pooled = {"REMINDERS_DATABASE_URL": bouncer.url(db_url)}
        first = reminders_cli("run", "--json", "--as-of", as_of.isoformat(), env=pooled)
        again = reminders_cli("run", "--json", env=pooled)
        # PgBouncer keeps its server connections: none holds an advisory lock.
        assert advisory_locks(db_url) == []

    assert first.returncode == 0, first.describe()
    summary = first.json()
    assert summary["status"] == "success", first.describe()
    assert summary["lock_scope"] == "transaction"
    assert summary["run_id"] is None and summary["blocked_by"] is None
    assert (summary["selected"], summary["created"]) == (len(expected), len(expected))
    assert again.returncode == 0, again.describe()
    assert (again.json()["created"], again.json()["already_existed"]) == (0, len(expected))
    assert_notifications_are_exactly(db, expected)
    rows = run_rows(db)
    assert [(r["status"], r["lock_scope"], r["trigger"]) for r in rows] == [
        ("success", "transaction", "cli")
    ] * 2

    # A direct run (the batched one) finds the day done.
    direct = reminders_cli("run", "--json", "--as-of", as_of.isoformat())
    assert direct.returncode == 0, direct.describe()
    assert direct.json()["lock_scope"] == "session"
    assert (direct.json()["status"], direct.json()["created"]) == ("success", 0)


def test_eight_callers_through_the_pooler_at_once_one_success_the_others_skipped(
    reminders_cli, notifications_gate, db, db_url
):
    as_of = today()
    seed_assignments(db, 1_000, 0.3, as_of)
    expected = expected_due_set(db, as_of)
    with running_pgbouncer(db_url, mode="transaction") as bouncer:
        pooled = {"REMINDERS_DATABASE_URL": bouncer.url(db_url)}
        # The caller that takes the lock waits at its INSERT, holding the lock, until
        # the gate opens: every other caller meets the lock taken.
        gate = notifications_gate()
        callers = [
            reminders_cli.start("run", "--json", "--as-of", as_of.isoformat(), env=pooled)
            for _ in range(CALLERS)
        ]
        holder = wait_for(
            lambda: call_waiting_at_the_gate(db_url), timeout=90, what="a call holding the lock"
        )
        # Its lock is visible, though its run row is not (not committed yet).
        assert [lock["pid"] for lock in advisory_locks(db_url) if lock["objid"] == 1] == [
            holder["pid"]
        ]
        assert run_rows(db) == [] or all(r["status"] == "skipped" for r in run_rows(db))
        wait_for(
            lambda: sum(1 for c in callers if not c.alive()) >= CALLERS - 1,
            timeout=120,
            what="the other callers to finish",
        )
        gate.open()
        done = [caller.wait() for caller in callers]
        assert advisory_locks(db_url) == []

    statuses = sorted(d.json()["status"] for d in done)
    assert statuses == ["skipped"] * (CALLERS - 1) + ["success"], [d.describe() for d in done]
    for d in done:
        assert d.returncode == 0, d.describe()
        assert d.json()["lock_scope"] == "transaction"
        if d.json()["status"] == "skipped":
            assert d.json()["blocked_by"]["pid"] == holder["pid"], d.describe()
            assert d.json()["blocked_by"]["application_name"] == APPLICATION_NAME
    rows = run_rows(db)
    assert sorted(r["status"] for r in rows) == ["skipped"] * (CALLERS - 1) + ["success"]
    [success] = [r for r in rows if r["status"] == "success"]
    assert success["created"] == len(expected)
    assert_notifications_are_exactly(db, expected)


def test_a_caller_killed_mid_call_leaves_nothing(reminders_cli, notifications_gate, db, db_url):
    as_of = today()
    seed_assignments(db, 500, 0.3, as_of)
    with running_pgbouncer(db_url, mode="transaction") as bouncer:
        pooled = {"REMINDERS_DATABASE_URL": bouncer.url(db_url)}
        gate = notifications_gate()
        caller = reminders_cli.start("run", "--json", env=pooled)
        holder = wait_for(
            lambda: call_waiting_at_the_gate(db_url), timeout=60, what="a call holding the lock"
        )
        caller.kill()
        # PgBouncer drops the server connection of a client gone mid-transaction; the
        # server ends the transaction with it, and the lock and rows go too.
        wait_for(
            lambda: not any(lock["pid"] == holder["pid"] for lock in advisory_locks(db_url)),
            timeout=30,
            what="the killed caller's lock to go",
        )
        gate.open()
        assert advisory_locks(db_url) == []
    assert run_rows(db) == []
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM notifications").fetchone()[0] == 0


def test_a_signal_mid_call_cancels_it_and_logs_failed(
    reminders_cli, notifications_gate, db, db_url
):
    as_of = today()
    seed_assignments(db, 500, 0.3, as_of)
    with running_pgbouncer(db_url, mode="transaction") as bouncer:
        pooled = {"REMINDERS_DATABASE_URL": bouncer.url(db_url)}
        gate = notifications_gate()
        caller = reminders_cli.start("run", "--json", env=pooled)
        holder = wait_for(
            lambda: call_waiting_at_the_gate(db_url), timeout=60, what="a call holding the lock"
        )
        caller.kill(signal.SIGTERM)
        done = caller.wait()
        # Cancelled on the server while the gate still holds: nothing of it is left.
        assert not any(lock["pid"] == holder["pid"] for lock in advisory_locks(db_url))
        gate.open()
    assert done.returncode == 1, done.describe()
    summary = done.json()
    assert (summary["status"], summary["lock_scope"]) == ("failed", "transaction"), summary
    assert "SIGTERM" in summary["error"], summary
    [row] = run_rows(db)
    assert (row["status"], row["lock_scope"], row["id"]) == (
        "failed",
        "transaction",
        summary["reminder_runs_id"],
    )
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM notifications").fetchone()[0] == 0
