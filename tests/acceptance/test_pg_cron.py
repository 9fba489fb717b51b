"""pg_cron runs the day with `SELECT * FROM reminders_run_day()` (docs/operations.md,
"Scheduling with pg_cron"), on a private PostgreSQL 15 with Debian's pg_cron preloaded.

pg_cron 1.4 (Debian 12's) ticks once a minute at the shortest ('* * * * *'; seconds
came with 1.5), so one tick serves three databases of the cluster, one job in each
(cron.schedule_in_database), each with the lock in another state: free; held by a
Python run (the session lock); and the reverse, the tick holding the transaction
lock while a Python run tries. The run lock is per database, as advisory locks are.
Each job runs as the recipe's login, a member of reminders_job only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from reminders_pipeline.core.services import build_reminder_run
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.lock_holder import is_one_call_session
from reminders_pipeline.db.migrate import upgrade
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.cron_pg import private_cron_postgres
from tests.helpers.runs import (
    NotificationsGate,
    assert_notifications_are_exactly,
    expected_due_set,
    run_rows,
    seed_assignments,
    today,
    wait_for,
)

pytestmark = pytest.mark.acceptance

CRON_LOGIN = "reminders_cron"
EVERY_MINUTE = "* * * * *"  # the recipe's is '0 6 * * *'
COMMAND = "SELECT * FROM reminders_run_day()"
TICK_WAIT_S = 75  # the next minute's tick, and its start


@pytest.fixture
def cron_urls() -> Iterator[dict[str, str]]:
    """Three migrated databases on the private cluster, and the job's login made as the
    recipe makes it (pg_cron lives in the first, its cron.database_name)."""
    with private_cron_postgres() as url:
        urls = {name: make_conninfo(url, dbname=name) for name in ("free", "held", "reverse")}
        urls["free"] = url
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE held")
            conn.execute("CREATE DATABASE reverse")
        for each in urls.values():
            upgrade(each)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_cron")
            conn.execute(f"CREATE ROLE {CRON_LOGIN} LOGIN IN ROLE reminders_job")
            conn.execute(f"GRANT USAGE ON SCHEMA cron TO {CRON_LOGIN}")
            conn.execute(f"ALTER ROLE {CRON_LOGIN} SET reminders.trigger = 'pg_cron'")
        yield urls


def schedule_everywhere(urls: dict[str, str]) -> list[int]:
    """One job per database, scheduled by the superuser to run as the job's login."""
    with psycopg.connect(urls["free"], autocommit=True) as conn:
        return [
            conn.execute(
                "SELECT cron.schedule_in_database(%s, %s, %s, %s, %s)",
                (f"reminders-{name}", EVERY_MINUTE, COMMAND, name_db(url), CRON_LOGIN),
            ).fetchone()[0]
            for name, url in urls.items()
        ]


def name_db(url: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(url)["dbname"]


def unschedule_all(urls: dict[str, str]) -> None:
    with psycopg.connect(urls["free"], autocommit=True) as conn:
        conn.execute("SELECT cron.unschedule(jobid) FROM cron.job")


def tick_waiting_at_the_gate(url: str) -> dict[str, Any] | None:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT pid, application_name, backend_type FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            " AND query ILIKE '%%reminders_run_day%%'"
        ).fetchone()


def rows_with(db: Database, **where: Any) -> list[dict[str, Any]]:
    return [r for r in run_rows(db) if all(r[k] == v for k, v in where.items())]


def test_one_tick_runs_the_day_or_is_skipped_naming_the_run_that_holds_the_lock(cron_urls):
    dbs = {name: Database(url) for name, url in cron_urls.items()}
    expected = {}
    for name, db in dbs.items():
        seed_assignments(db, 400, 0.3, today())
        expected[name] = expected_due_set(db, today())
        assert len(expected[name]) > 30

    # "held": a Python run took the session lock and wrote its 'running' row.
    python_run = build_reminder_run(cron_urls["held"], ReminderSettings(), dagster_run_id="py-1")
    assert python_run.start(today()) is None
    # "reverse": the tick will wait at its INSERT, holding the transaction lock
    # (the gate closes before the tick can come: the jobs are scheduled after it).
    # Unscheduled only once every tick has ended: pg_cron 1.4 records a job removed
    # while its tick runs as 'failed: job canceled', though the tick went on and
    # committed. A second tick (a minute later) would find each day done.
    gate = NotificationsGate(cron_urls["reverse"])
    jobs = schedule_everywhere(cron_urls)
    try:
        _check_the_tick(cron_urls, python_run, jobs, gate)
    finally:
        gate.open()
        unschedule_all(cron_urls)


def _check_the_tick(
    cron_urls: dict[str, str], python_run: Any, jobs: list[int], gate: NotificationsGate
) -> None:
    dbs = {name: Database(url) for name, url in cron_urls.items()}
    expected = {name: expected_due_set(db, today()) for name, db in dbs.items()}
    try:
        tick = wait_for(
            lambda: tick_waiting_at_the_gate(cron_urls["reverse"]),
            timeout=TICK_WAIT_S,
            what="the tick in 'reverse' to hold the lock",
        )
        blocked = build_reminder_run(cron_urls["reverse"], ReminderSettings()).execute(today())
    finally:
        gate.open()

    # "free": the tick created the day's reminders and logged them.
    wait_for(lambda: rows_with(dbs["free"], status="success"), timeout=30, what="free's tick")
    free = run_rows(dbs["free"])[0]
    assert (free["status"], free["lock_scope"], free["trigger"], free["as_of"]) == (
        "success",
        "transaction",
        "pg_cron",
        today(),
    )
    assert free["created"] == free["selected"] == len(expected["free"])
    assert_notifications_are_exactly(dbs["free"], expected["free"])

    # "held": the tick was skipped and named the Python run; the run then finished.
    wait_for(lambda: rows_with(dbs["held"], status="skipped"), timeout=30, what="held's tick")
    [skipped] = rows_with(dbs["held"], status="skipped")
    assert (skipped["lock_scope"], skipped["trigger"]) == ("transaction", "pg_cron")
    assert skipped["blocked_by_pid"] == python_run.lock.backend_pid
    assert skipped["blocked_by_run_id"] == "py-1" and "run py-1" in skipped["error"]
    python_run.select()
    python_run.dispatch()
    assert python_run.finish().status == "success"
    assert_notifications_are_exactly(dbs["held"], expected["held"])

    # "reverse": the Python run met the tick's lock and named its backend, which the
    # function names for the stale-lock sensor while it holds the lock (0012).
    assert blocked.status == "skipped"
    assert blocked.holder is not None and blocked.holder.pid == tick["pid"]
    assert is_one_call_session(blocked.holder.application_name), blocked.holder
    wait_for(lambda: rows_with(dbs["reverse"], status="success"), timeout=30, what="reverse's tick")
    assert_notifications_are_exactly(dbs["reverse"], expected["reverse"])
    first_two = sorted((r["status"], r["lock_scope"]) for r in run_rows(dbs["reverse"])[:2])
    assert first_two == [("skipped", "session"), ("success", "transaction")]

    with psycopg.connect(cron_urls["free"], row_factory=dict_row) as conn:
        details = conn.execute(
            "SELECT DISTINCT ON (jobid) jobid, status, return_message"
            " FROM cron.job_run_details WHERE jobid = ANY(%s) ORDER BY jobid, runid",
            (jobs,),
        ).fetchall()
    assert sorted(d["jobid"] for d in details) == sorted(jobs), details
    assert all(d["status"] == "succeeded" for d in details), details
