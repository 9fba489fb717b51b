"""Migrations: one command, idempotent, safe to run from two processes at once, keeping
live data step by step, and never under a reminders run (they wait for the run lock)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import pytest

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.lock_keys import LOCK_KEY, MIGRATION_LOCK
from reminders_pipeline.db.migrate import current_revision, head_revision, revisions, upgrade
from reminders_pipeline.errors import MigrationBlocked
from tests.helpers.locks import lock_free, migration_session
from tests.helpers.migration_data import AS_OF, add_runs_and_reminders
from tests.helpers.runs import seed_assignments, wait_for


def test_upgrade_applies_everything_once_and_then_is_a_no_op(empty_url):
    assert current_revision(empty_url) is None
    assert upgrade(empty_url) == (None, head_revision())
    assert upgrade(empty_url) == (head_revision(), head_revision())
    with psycopg.connect(empty_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert {"assignments", "activities", "notifications", "reminder_runs"} <= tables


def test_concurrent_upgrades_wait_for_each_other(empty_url):
    results, errors = [], []

    def migrate() -> None:
        try:
            results.append(upgrade(empty_url))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(results, key=str) == sorted(
        [(None, head_revision()), (head_revision(), head_revision())], key=str
    )


# ------------------------------------------------------------------ live data, step by step

# What each table must still hold, row for row, after every later migration.
SNAPSHOTS = {
    "mentors": "SELECT id, name, email FROM mentors ORDER BY id",
    "assignments": (
        "SELECT id, mentor_id, status, started_on, last_contact_date, reminder_interval_days "
        "FROM assignments ORDER BY id"
    ),
    "activities": (
        "SELECT id, assignment_id, occurred_on, registered_via FROM activities ORDER BY id"
    ),
    "reminder_runs": (
        "SELECT id, status, as_of, dagster_run_id, started_at, finished_at, created, error, "
        "blocked_by_pid FROM reminder_runs ORDER BY id"
    ),
    "notifications": (
        "SELECT id, assignment_id, mentor_id, kind, due_on, silence_started_on, sequence, "
        "channel, state, run_id, created_at, delivered_at "
        "FROM notifications ORDER BY id"
    ),
}


def _snapshot(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {table: conn.execute(sql).fetchall() for table, sql in SNAPSHOTS.items()}


def test_each_migration_keeps_live_data(empty_url):
    """Upgrade one revision at a time on a database in use: every row written before
    a migration is still there, unchanged, after it and after every later one."""
    steps = revisions()
    assert steps[0] == "0001" and steps[-1] == head_revision()
    kept: dict[str, list[tuple]] = {}
    for step, revision in enumerate(steps, start=1):
        assert upgrade(empty_url, revision)[1] == revision
        now = _snapshot(empty_url)
        for table, rows in kept.items():
            # Earlier rows unchanged (ids, keys, states, links), none lost.
            assert now[table][: len(rows)] == rows, f"{table} changed by {revision}"
            assert len(now[table]) == len(rows), f"{table} count changed by {revision}"
        # More live data at this revision, with what it makes possible.
        seed_assignments(Database(empty_url), 400, 0.4, AS_OF)
        created = add_runs_and_reminders(empty_url, AS_OF + timedelta(days=step), revision)
        assert created > 50, created
        kept = _snapshot(empty_url)
    # At head the rows written under older revisions take part in the natural key:
    # a second copy of any of them is refused.
    with psycopg.connect(empty_url) as conn:
        copied = conn.execute(
            "INSERT INTO notifications (assignment_id, mentor_id, kind, due_on,"
            " silence_started_on, sequence)"
            " SELECT assignment_id, mentor_id, kind, due_on, silence_started_on, sequence"
            " FROM notifications ON CONFLICT DO NOTHING"
        ).rowcount
    assert copied == 0
    with psycopg.connect(empty_url) as conn:
        dupes = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM notifications GROUP BY assignment_id, kind,"
            " silence_started_on, sequence HAVING count(*) > 1) d"
        ).fetchone()[0]
    assert dupes == 0
    assert _snapshot(empty_url)["notifications"] == kept["notifications"]


# ------------------------------------------------------------------ migrations and the run lock


def _hold_run_lock(url: str) -> psycopg.Connection:
    """A plain session holding the run lock, as a run in progress would."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEY)
    return conn


def test_upgrade_waits_for_a_run_holding_the_lock_then_applies(empty_url):
    upgrade(empty_url, "0002")
    run = _hold_run_lock(empty_url)
    told: list = []
    outcome: list = []
    worker = threading.Thread(
        target=lambda: outcome.append(upgrade(empty_url, lock_wait_s=60, on_wait=told.append))
    )
    worker.start()
    try:
        # While the run holds the lock, the migration waits: it holds the migration
        # lock, not the run lock, and has applied nothing.
        session = wait_for(
            lambda: (s := migration_session(empty_url)) and s["migration_lock"] and told and s,
            timeout=30,
            what="the migration to wait for the run lock",
        )
        time.sleep(1)
        assert worker.is_alive()
        assert not session["run_lock"]
        assert current_revision(empty_url) == "0002"
        assert told[0].pid == run.info.backend_pid
    finally:
        run.close()  # the run ends: PostgreSQL drops its lock
    worker.join(30)
    assert not worker.is_alive()
    assert outcome == [("0002", head_revision())]
    assert lock_free(empty_url)


def test_upgrade_refuses_when_the_run_lock_stays_held_and_names_the_holder(empty_url):
    upgrade(empty_url, "0002")
    run = _hold_run_lock(empty_url)
    try:
        with pytest.raises(MigrationBlocked) as refused:
            upgrade(empty_url, lock_wait_s=1)
        message = str(refused.value)
        assert f"pid {run.info.backend_pid}" in message, message
        assert "0002 to " + head_revision() in message, message
        assert current_revision(empty_url) == "0002"
        # The holder keeps its lock; the migration let go of everything it took.
        with psycopg.connect(empty_url, autocommit=True) as other:
            assert not other.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEY).fetchone()[0]
            assert other.execute(
                "SELECT pg_try_advisory_xact_lock(%s, %s)", MIGRATION_LOCK
            ).fetchone()[0]
        assert migration_session(empty_url) is None
    finally:
        run.close()


def test_upgrade_with_nothing_to_apply_does_not_wait_for_a_run(empty_url):
    upgrade(empty_url)
    run = _hold_run_lock(empty_url)
    try:
        started = time.monotonic()
        assert upgrade(empty_url, lock_wait_s=30) == (head_revision(), head_revision())
        assert time.monotonic() - started < 10
    finally:
        run.close()
