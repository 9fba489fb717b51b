"""The run's guarantees on real PostgreSQL, through the services (no Dagster)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from reminders_pipeline.core.services import build_reminder_run
from reminders_pipeline.db.lock_holder import application_name_for
from reminders_pipeline.db.lock_keys import LOCK_KEY
from reminders_pipeline.errors import DatabaseUnavailable, LockLost
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.data import add_assignment, add_mentor, db_rows, notifications, runs
from tests.helpers.due_rule import reminder_due_on
from tests.helpers.locks import lock_free

AS_OF = date(2026, 11, 29)
SETTINGS = ReminderSettings(default_interval_days=10, max_reminders_per_silence=3, batch_size=3)


def run_once(db_url: str, as_of: date = AS_OF, settings: ReminderSettings = SETTINGS):
    return build_reminder_run(db_url, settings, dagster_run_id="test-run").execute(as_of)


@pytest.fixture
def mixed_assignments(db) -> dict[str, int]:
    """A small set covering every branch of the due rule (batch size 3 forces several batches)."""
    mentor = add_mentor(db)
    days = lambda n: AS_OF - timedelta(days=n)  # noqa: E731
    return {
        "silent_9": add_assignment(db, mentor, days(9)),
        "silent_10": add_assignment(db, mentor, days(10)),
        "silent_25": add_assignment(db, mentor, days(25)),
        "silent_200": add_assignment(db, mentor, days(200)),
        "override_7_silent_7": add_assignment(db, mentor, days(7), interval_days=7),
        "override_14_silent_13": add_assignment(db, mentor, days(13), interval_days=14),
        "paused_silent_30": add_assignment(db, mentor, days(30), status="paused"),
        "closed_silent_30": add_assignment(db, mentor, days(30), status="closed"),
        "contact_after_as_of": add_assignment(db, mentor, AS_OF + timedelta(days=2)),
    }


def expected_reminders(db, as_of: date) -> list[tuple]:
    """The due set computed in Python from the rule, independent of the dispatch SQL."""
    rows = db_rows(
        db,
        "SELECT id, last_contact_date, coalesce(reminder_interval_days, %s) AS interval_days "
        "FROM assignments WHERE status = 'active' ORDER BY id",
        (SETTINGS.default_interval_days,),
    )
    expected = []
    for r in rows:
        due = reminder_due_on(
            r["last_contact_date"], r["interval_days"], as_of, SETTINGS.max_reminders_per_silence
        )
        if due:
            expected.append((r["id"], "follow_up_reminder", due[1], due[0]))
    return expected


def test_run_creates_exactly_the_due_set(db, db_url, mixed_assignments):
    summary = run_once(db_url)

    assert summary.status == "success"
    got = notifications(db)
    assert got == expected_reminders(db, AS_OF)
    assert {a for a, *_ in got} == {
        mixed_assignments[k]
        for k in ("silent_10", "silent_25", "silent_200", "override_7_silent_7")
    }
    assert (summary.selected, summary.created, summary.already_existed) == (4, 4, 0)
    [row] = runs(db)
    assert row["status"] == "success" and (row["selected"], row["created"]) == (4, 4)
    assert row["finished_at"] is not None and row["lock_backend_pid"] is not None
    assert lock_free(db_url)


def test_same_date_twice_creates_nothing_the_second_time(db, db_url, mixed_assignments):
    run_once(db_url)
    first = notifications(db)

    again = run_once(db_url)

    assert again.status == "success"
    assert (again.selected, again.created, again.already_existed) == (4, 0, 4)
    assert notifications(db) == first


def test_backfill_of_three_dates_creates_what_each_day_would_have(db, db_url):
    mentor = add_mentor(db)
    assignment = add_assignment(db, mentor, AS_OF - timedelta(days=30))
    days = [AS_OF - timedelta(days=10), AS_OF - timedelta(days=9), AS_OF]

    for day in days:
        run_once(db_url, day)

    # Day -10 (silent 20): reminder 2; day -9 (silent 21): still reminder 2; today: reminder 3.
    last = AS_OF - timedelta(days=30)
    assert notifications(db) == [
        (assignment, "follow_up_reminder", last + timedelta(days=20), 2),
        (assignment, "follow_up_reminder", last + timedelta(days=30), 3),
    ]
    # Backfilling the same dates again creates nothing.
    for day in days:
        assert run_once(db_url, day).created == 0


def test_run_is_skipped_while_another_session_holds_the_lock(db, db_url, mixed_assignments):
    with psycopg.connect(
        db_url, autocommit=True, application_name=application_name_for("blocking-run")
    ) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEY)
        summary = run_once(db_url)
        holder_pid = other.info.backend_pid

    assert summary.status == "skipped"
    assert notifications(db) == []
    [row] = runs(db)
    assert row["status"] == "skipped"
    assert row["blocked_by_pid"] == holder_pid
    assert row["blocked_by_run_id"] == "blocking-run"
    assert row["blocked_by_application_name"] == "reminders-run:blocking-run"
    assert row["blocked_since"] is not None
    assert "another run holds the run lock" in row["error"]


@pytest.mark.parametrize("failing", ["scheduler", "dispatcher"])
def test_service_error_marks_failed_and_frees_the_lock(db, db_url, mixed_assignments, failing):
    run = build_reminder_run(db_url, SETTINGS, dagster_run_id="test-run")

    def boom(*args, **kwargs):
        assert not lock_free(db_url), "the lock must be held while the services run"
        raise RuntimeError(f"{failing} exploded")

    target = run.scheduler if failing == "scheduler" else run.dispatcher
    setattr(target, "select_due" if failing == "scheduler" else "dispatch", boom)

    with pytest.raises(RuntimeError, match="exploded"):
        run.execute(AS_OF)

    assert lock_free(db_url)
    [row] = runs(db)
    assert row["status"] == "failed"
    assert f"RuntimeError: {failing} exploded" in row["error"]


def test_lost_lock_session_stops_dispatch_and_fails_the_run(db, db_url, mixed_assignments):
    run = build_reminder_run(db_url, SETTINGS, dagster_run_id="test-run")
    assert run.start(AS_OF) is None
    batches = []

    def kill_lock_session_after_first_batch(progress):
        batches.append(progress)
        with psycopg.connect(db_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (run.lock.backend_pid,))

    with pytest.raises(LockLost):
        run.dispatch(on_progress=kill_lock_session_after_first_batch)
    run.close()

    assert len(batches) == 1
    [row] = runs(db)
    assert row["status"] == "failed" and "LockLost" in row["error"]
    # Exactly the due assignments of the first batch (3 assignments) were written.
    assert {a for a, *_ in notifications(db)} == {
        mixed_assignments["silent_10"],
        mixed_assignments["silent_25"],
    }


def test_next_run_marks_a_dead_running_row_abandoned(db, db_url, mixed_assignments):
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO reminder_runs (status, as_of, dagster_run_id) "
            "VALUES ('running', %s, 'dead-run')",
            (AS_OF,),
        )

    summary = run_once(db_url)

    assert summary.status == "success"
    statuses = [(r["dagster_run_id"], r["status"]) for r in runs(db)]
    assert statuses == [("dead-run", "abandoned"), ("test-run", "success")]


def test_changing_the_interval_mid_silence_repeats_no_reminder_and_keeps_the_cap(db, db_url):
    mentor = add_mentor(db)
    last = date(2026, 1, 1)
    assignment = add_assignment(db, mentor, last)
    for day in (date(2026, 1, 11), date(2026, 1, 21), date(2026, 1, 31)):
        run_once(db_url, day)
    assert [n[3] for n in notifications(db)] == [1, 2, 3]

    # The interval changes while the silence lasts: 7, then 14 days.
    for interval, day in ((7, date(2026, 2, 6)), (14, date(2026, 2, 7))):
        with db.connection() as conn:
            conn.execute(
                "UPDATE assignments SET reminder_interval_days = %s WHERE id = %s",
                (interval, assignment),
            )
        assert run_once(db_url, day).created == 0

    assert [n[3] for n in notifications(db)] == [1, 2, 3]


def test_an_invocation_that_cannot_open_its_lock_connection_is_still_logged(db, db_url):
    # Roles are the server's: a name of this test's own (parallel workers, other runs).
    role = f"reminders_no_login_{uuid.uuid4().hex[:8]}"
    with db.connection() as conn:
        conn.execute(f'CREATE ROLE "{role}" NOLOGIN')
    try:
        run = build_reminder_run(db_url, SETTINGS, dagster_run_id="refused-run")
        # The lock connection is refused; the run log's own connection is not.
        run.lock.url = make_conninfo(db_url, user=role)
        with pytest.raises(DatabaseUnavailable):
            run.execute(AS_OF)
    finally:
        with db.connection() as conn:
            conn.execute(f'DROP ROLE "{role}"')

    [row] = runs(db)
    assert (row["status"], row["dagster_run_id"]) == ("failed", "refused-run")
    assert "cannot connect" in row["error"]


def test_a_run_whose_row_was_marked_abandoned_records_failed_not_success(db, db_url):
    run = build_reminder_run(db_url, SETTINGS, dagster_run_id="lost-run")
    assert run.start(AS_OF) is None
    run.select()
    run.dispatch()
    # Its lock session is lost, and another run takes over and marks it abandoned.
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (run.lock.backend_pid,))
    assert run_once(db_url).status == "success"

    with pytest.raises(LockLost):
        run.finish()
    run.close()

    lost = [r for r in runs(db) if r["dagster_run_id"] == "lost-run"]
    assert [r["status"] for r in lost] == ["failed"]
    # finish() checks the lock on its own session first: gone, so never 'success'.
    assert "LockLost: the run lock connection is gone" in lost[0]["error"]
