"""`reminders db upgrade` while a real `reminders run` holds the run lock: it waits, then
refuses, naming the run, and changes nothing.

The run is held in its lock window by a SHARE lock on `notifications`. A migration
must be pending for `db upgrade` to have anything to do, yet the run needs the current
schema to start: once the run holds the lock, the test sets the database's recorded
revision back one step, as a deployment whose code carries a newer migration than
the database would see it. The schema itself stays as it is (re-applying the last
migration would fail loudly), so a migration that did not wait would show.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from reminders_pipeline.db.migrate import APPLICATION_NAME, head_revision
from reminders_pipeline.db.schema_version import VERSION_TABLE
from tests.helpers.locks import migration_session
from tests.helpers.runs import (
    assert_settled,
    expected_due_set,
    seed_assignments,
    today,
    wait_for,
    wait_for_run_at_the_gate,
)

pytestmark = pytest.mark.acceptance

WAIT_S = 4


def _set_revision(url: str, revision: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = %s", (revision,))


def test_upgrade_refuses_while_a_run_holds_the_lock(reminders_cli, notifications_gate, db, db_url):
    as_of = today()
    seed_assignments(db, 500, 0.3, as_of)
    expected = expected_due_set(db, as_of)
    head = head_revision()
    previous = f"{int(head) - 1:04d}"

    gate = notifications_gate()
    run = reminders_cli.start("run", "--json", "--as-of", as_of.isoformat())
    holder, _ = wait_for_run_at_the_gate(db_url, run)
    _set_revision(db_url, previous)
    try:
        started = time.monotonic()
        migrate = reminders_cli.start(
            "db", "upgrade", env={"REMINDERS_MIGRATION_LOCK_WAIT_S": str(WAIT_S)}
        )
        # While it waits: its session holds the migration lock, not the run lock,
        # and the run still holds its own.
        session = wait_for(
            lambda: (s := migration_session(db_url)) and s["migration_lock"] and s,
            timeout=60,
            what=f"the {APPLICATION_NAME} session to wait for the run lock",
        )
        assert not session["run_lock"]
        assert migrate.alive()
        done = migrate.wait(timeout=60)
        elapsed = time.monotonic() - started

        assert done.returncode == 1, done.describe()
        assert elapsed >= WAIT_S, f"refused after {elapsed:.1f}s, before the {WAIT_S}s wait"
        run_id = holder["application_name"].removeprefix("reminders-run:")
        assert f"waiting for the reminders run lock, held by pid {holder['pid']}" in done.stderr
        error = done.stderr.strip().splitlines()[-1]
        assert error.startswith(f"error: not migrating from {previous} to {head}"), error
        assert f"pid {holder['pid']}, run {run_id}" in error, error
        assert "REMINDERS_MIGRATION_LOCK_WAIT_S" in error, error
        # Nothing applied, nothing left: the revision is as it was, the run still holds the lock.
        with psycopg.connect(db_url) as conn:
            assert conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()[0] == (
                previous
            )
        assert migration_session(db_url) is None
        assert run.alive()
    finally:
        _set_revision(db_url, head)
        gate.open()

    finished = run.wait()
    assert finished.returncode == 0, finished.describe()
    assert finished.json()["status"] == "success", finished.describe()
    assert_settled(db, db_url, expected)
    # With the run gone and nothing pending, the same command is a quick no-op.
    again = reminders_cli("db", "upgrade", env={"REMINDERS_MIGRATION_LOCK_WAIT_S": "0"})
    assert again.returncode == 0, again.describe()
    assert f"schema already at {head}" in again.stdout
