"""What the execution log says when a run loses its lock session (real PostgreSQL, no Dagster)."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
import pytest

from reminders_pipeline.core.services import build_reminder_run
from reminders_pipeline.errors import LockLost
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.data import add_assignment, add_mentor, runs
from tests.helpers.locks import lock_free

AS_OF = date(2026, 11, 29)
SETTINGS = ReminderSettings(default_interval_days=10, max_reminders_per_silence=3, batch_size=2)


@pytest.fixture
def four_due(db) -> None:
    mentor = add_mentor(db)
    for days in (10, 11, 12, 13):
        add_assignment(db, mentor, AS_OF - timedelta(days=days))


def terminate(db_url: str, pid: int) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_committed_batches_count_on_the_row_of_a_run_that_died(db, db_url, four_due):
    """A process that dies after its first batch records nothing itself; its row still
    carries that batch's counts, and the run that takes over says what happened."""
    dead = build_reminder_run(db_url, SETTINGS, dagster_run_id="dead-run")
    assert dead.start(AS_OF) is None
    dead_pid = dead.lock.backend_pid
    # As if the process died: it never gets to write its outcome.
    dead.runlog.failed = lambda *args, **kwargs: None  # type: ignore[method-assign]

    def die_after_first_batch(progress):
        terminate(db_url, dead_pid)

    with pytest.raises(LockLost):
        dead.dispatch(on_progress=die_after_first_batch)
    dead.close()
    assert lock_free(db_url)

    summary = build_reminder_run(db_url, SETTINGS, dagster_run_id="next-run").execute(AS_OF)

    assert (summary.status, summary.selected, summary.created) == ("success", 4, 2)
    abandoned, done = runs(db)
    assert abandoned["status"] == "abandoned"
    assert (abandoned["selected"], abandoned["created"], abandoned["already_existed"]) == (2, 2, 0)
    assert f"lock session (backend pid {dead_pid}) ended" in abandoned["error"]
    assert (done["selected"], done["created"], done["already_existed"]) == (4, 2, 2)


def test_abandoned_row_names_a_server_restart_after_the_run_started(db, db_url):
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO reminder_runs (status, as_of, dagster_run_id, started_at, "
            "lock_backend_pid) VALUES ('running', %s, 'before-restart', "
            "pg_postmaster_start_time() - interval '1 minute', 4242)",
            (AS_OF,),
        )

    assert build_reminder_run(db_url, SETTINGS).execute(AS_OF).status == "success"

    [abandoned, _] = runs(db)
    assert abandoned["status"] == "abandoned"
    assert "the database server restarted at" in abandoned["error"]
    assert "while this run held the lock" in abandoned["error"]


def test_success_is_never_recorded_by_a_session_that_does_not_hold_the_lock(db, db_url, four_due):
    run = build_reminder_run(db_url, SETTINGS, dagster_run_id="unlocked-run")
    assert run.start(AS_OF) is None
    run.select()
    run.dispatch()
    # The lock is gone from the session while the session itself lives on.
    run.lock.conn.execute("SELECT pg_advisory_unlock_all()")
    run.lock.ensure_held = lambda: None  # type: ignore[method-assign]  # only the SQL guards now

    with pytest.raises(LockLost):
        run.finish()
    run.close()

    [row] = runs(db)
    assert row["status"] == "failed" and "no longer holds the run lock" in row["error"]
    assert row["created"] == 4
