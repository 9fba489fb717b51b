"""reminders_run_day() (migration 0011): the day's run as one SQL call, under the
transaction-level lock on the batched run's key. Called as a login of the job role,
as pg_cron, a transaction pooler or an RPC client would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from reminders_pipeline.core.run_day import choose_lock_scope, run_day
from reminders_pipeline.core.services import build_reminder_run
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.lock_keys import LOCK_KEY
from reminders_pipeline.db.seed import seed
from reminders_pipeline.settings import ReminderSettings

SETTINGS = ReminderSettings()
TODAY = SETTINGS.today()


@pytest.fixture
def job_url(db_url: str) -> Iterator[str]:
    """A LOGIN member of reminders_job, for this test only (roles are the server's)."""
    login = f"reminders_job_t{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{login}" LOGIN IN ROLE reminders_job')
    yield make_conninfo(db_url, user=login)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{login}"')


def call(url: str, as_of: date | None = None, **gucs: str) -> dict[str, Any]:
    """One call in its own transaction, committed; `gucs` are reminders.* settings."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for name, value in gucs.items():
            conn.execute("SELECT set_config(%s, %s, true)", (f"reminders.{name}", value))
        return conn.execute("SELECT * FROM reminders_run_day(%s)", (as_of,)).fetchone()


def seeded(db: Database, count: int = 600, due_fraction: float = 0.4) -> None:
    seed(db, assignments=count, due_fraction=due_fraction, today=TODAY, default_interval_days=10)


def runs(db: Database) -> list[dict[str, Any]]:
    with db.connection() as conn:
        return conn.execute("SELECT * FROM reminder_runs ORDER BY id").fetchall()


def reminders(db: Database) -> list[tuple]:
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT assignment_id, mentor_id, kind, due_on, silence_started_on, sequence,"
            " channel, state FROM notifications ORDER BY 1, 5, 6"
        ).fetchall()
    return [tuple(r.values()) for r in rows]


def run_locks(db_url: str) -> list[tuple]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s::bigint::oid AND objid = %s::bigint::oid",
            LOCK_KEY,
        ).fetchall()


def test_a_call_creates_the_days_reminders_and_logs_success(db, db_url, job_url):
    seeded(db)
    result = call(job_url)

    assert result["status"] == "success"
    assert result["selected"] > 50 and result["created"] == result["selected"]
    assert result["already_existed"] == 0
    [row] = runs(db)
    assert row["id"] == result["run_id"]
    assert (row["status"], row["lock_scope"], row["trigger"], row["as_of"]) == (
        "success",
        "transaction",
        "sql",
        TODAY,
    )
    assert (row["selected"], row["created"], row["already_existed"]) == (
        result["selected"],
        result["created"],
        0,
    )
    assert row["finished_at"] >= row["started_at"]
    assert len(reminders(db)) == result["created"]
    with db.connection() as conn:
        [n] = conn.execute("SELECT count(*) AS n FROM notifications WHERE run_id = %s",
                           (row["id"],)).fetchall()  # fmt: skip
    assert n["n"] == result["created"]
    # The lock ended with the transaction.
    assert run_locks(db_url) == []


def test_a_second_call_for_the_same_day_creates_nothing(db, job_url):
    seeded(db)
    first = call(job_url)
    again = call(job_url, TODAY)
    assert again["status"] == "success"
    assert (again["selected"], again["created"], again["already_existed"]) == (
        first["selected"],
        0,
        first["selected"],
    )
    assert len(reminders(db)) == first["created"]


def test_a_future_date_is_refused_and_nothing_is_written(db, job_url):
    seeded(db, 50)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="is in the future"):
        call(job_url, TODAY + timedelta(days=2))
    assert runs(db) == [] and reminders(db) == []


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("timezone", "Mars/Olympus", "not a timezone"),
        ("default_interval_days", "ten", "whole numbers"),
        ("max_per_silence", "0", "1 or more"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(db, job_url, name, value, says):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=says):
        call(job_url, **{name: value})
    assert runs(db) == []


def test_a_call_while_the_batched_run_holds_the_session_lock_is_skipped_naming_it(
    db, db_url, job_url
):
    seeded(db, 200)
    with psycopg.connect(db_url, autocommit=True, application_name="reminders-run:held") as held:
        assert held.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEY).fetchone()[0]
        result = call(job_url)
        holder_pid = held.info.backend_pid
    assert (result["status"], result["selected"], result["created"]) == ("skipped", 0, 0)
    [row] = runs(db)
    assert row["id"] == result["run_id"]
    assert (row["status"], row["lock_scope"]) == ("skipped", "transaction")
    assert row["blocked_by_pid"] == holder_pid
    assert row["blocked_by_application_name"] == "reminders-run:held"
    assert row["blocked_by_run_id"] == "held"
    assert f"pid {holder_pid}, run held" in row["error"]
    assert reminders(db) == []


def test_the_batched_run_is_skipped_while_a_call_holds_the_transaction_lock(db, db_url, job_url):
    seeded(db, 300)
    with psycopg.connect(job_url, row_factory=dict_row) as calling:
        calling.execute("SET application_name = 'pg_cron'")
        result = calling.execute("SELECT * FROM reminders_run_day()").fetchone()
        assert result["status"] == "success"
        # Not committed: the lock shows in pg_locks, the run row and reminders do not.
        assert [r[0] for r in run_locks(db_url)] == [calling.info.backend_pid]
        assert runs(db) == [] and reminders(db) == []

        batched = build_reminder_run(db_url, SETTINGS).execute(TODAY)
        assert batched.status == "skipped"
        assert batched.holder is not None
        assert batched.holder.pid == calling.info.backend_pid
        # Named by the function while it holds the lock, the caller's name kept (0012).
        assert batched.holder.application_name == "reminders-run-day (pg_cron)"
        calling.commit()
    # (The call's row took its id first, though it was committed last.)
    rows = sorted(runs(db), key=lambda r: r["status"])
    assert [(r["status"], r["lock_scope"]) for r in rows] == [
        ("skipped", "session"),
        ("success", "transaction"),
    ]
    assert len(reminders(db)) == result["created"] > 0


def test_two_calls_at_once_give_one_success_and_one_skipped(db, db_url, job_url):
    seeded(db, 300)
    with psycopg.connect(job_url, row_factory=dict_row) as first:
        first.execute("SET application_name = 'reminders-run-day'")
        assert first.execute("SELECT * FROM reminders_run_day()").fetchone()["status"] == "success"
        second = call(job_url)
        first.commit()
    assert second["status"] == "skipped"
    [skipped] = [r for r in runs(db) if r["status"] == "skipped"]
    assert skipped["blocked_by_application_name"] == "reminders-run-day"
    assert skipped["blocked_by_run_id"] is None


def test_a_failed_call_leaves_nothing(db, db_url, job_url):
    seeded(db, 300)
    with psycopg.connect(job_url, row_factory=dict_row) as conn:
        conn.execute("SELECT * FROM reminders_run_day()")
        conn.rollback()
    assert runs(db) == [] and reminders(db) == [] and run_locks(db_url) == []


def _correct_some(db: Database) -> None:
    """Carried reminders (migration 0005) on a few due assignments, as corrections leave."""
    with db.connection() as conn:
        conn.execute(
            "UPDATE assignments SET carried_for = last_contact_date, carried_reminders = 1,"
            " carried_last_sent_on = %s WHERE id %% 7 = 0 AND status = 'active'",
            (TODAY - timedelta(days=3),),
        )


@pytest.mark.parametrize(
    "settings",
    [
        ReminderSettings(batch_size=97),
        ReminderSettings(default_interval_days=7, max_reminders_per_silence=1, batch_size=97),
    ],
    ids=["defaults", "other-settings"],
)
def test_a_call_creates_exactly_what_the_batched_run_creates(db, job_url, db_url, settings):
    seeded(db, 1_500, 0.5)
    _correct_some(db)
    batched = build_reminder_run(db_url, settings).execute(TODAY)
    assert batched.status == "success" and batched.created > 100
    by_batches = reminders(db)
    with db.connection() as conn:
        conn.execute("DELETE FROM notifications")

    result = call(
        job_url,
        default_interval_days=str(settings.default_interval_days),
        max_per_silence=str(settings.max_reminders_per_silence),
        timezone=settings.timezone,
    )
    assert (result["selected"], result["created"], result["already_existed"]) == (
        batched.selected,
        batched.created,
        batched.already_existed,
    )
    assert reminders(db) == by_batches


def test_only_the_job_role_may_call_it_and_it_runs_as_the_caller(db, db_url):
    login = f"reminders_nobody_t{uuid.uuid4().hex[:8]}"
    api = f"reminders_api_t{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{login}" LOGIN')
        conn.execute(f'CREATE ROLE "{api}" LOGIN IN ROLE reminders_admin_api')
        [fn] = conn.execute(
            "SELECT prosecdef, proacl::text[] FROM pg_proc WHERE proname = 'reminders_run_day'"
        ).fetchall()
    try:
        assert fn[0] is False, "reminders_run_day must run with the caller's rights"
        assert not any(entry.startswith("=") for entry in fn[1]), f"PUBLIC may execute: {fn[1]}"
        for who in (login, api):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                call(make_conninfo(db_url, user=who))
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{login}"')
            conn.execute(f'DROP ROLE IF EXISTS "{api}"')
    assert runs(db) == []


def test_run_day_from_python_gives_the_cli_summary_with_its_lock_scope(db, job_url):
    seeded(db, 300)
    summary = run_day(job_url, SETTINGS, TODAY)
    data = summary.to_dict()
    assert (data["status"], data["lock_scope"], data["run_id"]) == ("success", "transaction", None)
    assert data["created"] > 0 and data["reminder_runs_id"] == runs(db)[0]["id"]
    assert runs(db)[0]["trigger"] == "cli"


def test_run_day_logs_a_failed_call(db, job_url, monkeypatch):
    # A timezone the server does not know fails the call; the failure is logged after it.
    summary = run_day(job_url, ReminderSettings(timezone="Mars/Olympus"), TODAY)
    assert summary.status == "failed" and "not a timezone" in (summary.error or "")
    [row] = runs(db)
    assert (row["status"], row["lock_scope"], row["id"]) == (
        "failed",
        "transaction",
        summary.run_row_id,
    )


def test_the_lock_scope_setting(db_url, monkeypatch):
    monkeypatch.delenv("REMINDERS_LOCK_SCOPE", raising=False)
    assert choose_lock_scope(db_url) == "session"  # a direct connection
    monkeypatch.setenv("REMINDERS_LOCK_SCOPE", "transaction")
    assert choose_lock_scope(db_url) == "transaction"
