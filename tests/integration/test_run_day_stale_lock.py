"""stale_lock_sensor and a day's run as one call (reminders_run_day()) that holds the run
lock longer than REMINDERS_STALE_LOCK_GRACE_S: at work (here, waiting on a row lock) it
is a run in progress, whoever calls it; its transaction left open is stale.

The call shows no 'running' row until it commits and its caller names its own session
(pg_cron, PostgREST, psql), so the sensor knows it by the name the function gives its
session for its transaction (migration 0012), and judges it by its state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from dagster import DagsterInstance
from psycopg.conninfo import make_conninfo

from reminders_pipeline.db.lock_holder import ONE_CALL_APPLICATION_NAME, lock_holder
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.resources import RemindersDatabaseResource
from reminders_pipeline.orchestration.sensors import stale_lock_sensor
from tests.helpers.alert_servers import WebhookServer
from tests.helpers.dagster_runs import evaluate_sensor
from tests.helpers.pgbouncer import running_pgbouncer
from tests.helpers.runs import wait_for
from tests.helpers.settings import override

GRACE_S = 1
QUIET = "the run lock is free or held by a run in progress"
# Callers' own names, and the holder's while the call holds the lock: PostgREST's, and
# `reminders run`'s (which is the function's too).
CALLERS = {
    "PostgREST 12.2.3": f"{ONE_CALL_APPLICATION_NAME} (PostgREST 12.2.3)",
    ONE_CALL_APPLICATION_NAME: ONE_CALL_APPLICATION_NAME,
}


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    override(monkeypatch, "STALE_LOCK_GRACE_S", GRACE_S)


@pytest.fixture
def job_url(db_url: str, login: Callable[[str | None], str]) -> str:
    """A login of the job role: the callers' rights (pg_cron's, an RPC role's)."""
    return make_conninfo(db_url, user=login("reminders_job"))


def stale_alerts(webhook: WebhookServer) -> list[dict[str, Any]]:
    return [r.body for r in webhook.received if r.body["kind"] == "stale_lock"]


def past_the_grace() -> None:
    time.sleep(GRACE_S + 0.5)


def call_in_a_transaction(url: str, application_name: str) -> dict[str, Any]:
    """One call, committed; and the session's name once the transaction has ended."""
    with psycopg.connect(url, application_name=application_name) as conn:
        status = conn.execute("SELECT status FROM reminders_run_day()").fetchone()[0]
        conn.commit()
        name = conn.execute("SELECT current_setting('application_name')").fetchone()[0]
        return {"status": status, "name_after": name}


@contextmanager
def call_waiting_on_a_row_lock(
    caller_url: str, observer_url: str, application_name: str
) -> Iterator[tuple[int, Future[dict[str, Any]]]]:
    """A call holding the run lock while it waits at its first write: marking dead
    'running' rows abandoned, one of which another session holds FOR UPDATE. Yields the
    call's pid (as seen on observer_url, a direct connection) and its result to come."""
    with psycopg.connect(observer_url) as blocker, ThreadPoolExecutor(1) as pool:
        row_id = blocker.execute(
            "INSERT INTO reminder_runs (status, as_of, trigger)"
            " VALUES ('running', current_date, 'cli') RETURNING id"
        ).fetchone()[0]
        blocker.commit()
        blocker.execute("SELECT 1 FROM reminder_runs WHERE id = %s FOR UPDATE", (row_id,))
        result = pool.submit(call_in_a_transaction, caller_url, application_name)

        def waiting_holder() -> int | None:
            holder = lock_holder(observer_url)
            if holder is None:
                return None
            with psycopg.connect(observer_url, autocommit=True) as conn:
                waits = conn.execute(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                    (holder.pid,),
                ).fetchone()
            return holder.pid if waits and waits[0] else None

        try:
            pid = wait_for(waiting_holder, timeout=30, what="the call to wait holding the lock")
            yield pid, result
        finally:
            blocker.rollback()
        assert result.result(timeout=30)["status"] == "success"


@pytest.mark.parametrize("caller", list(CALLERS))
def test_a_call_that_outlasts_the_grace_while_at_work_is_a_run_in_progress(
    instance: DagsterInstance,
    db_url: str,
    job_url: str,
    resources: dict,
    webhook: WebhookServer,
    caller: str,
) -> None:
    with call_waiting_on_a_row_lock(job_url, db_url, caller) as (pid, result):
        past_the_grace()
        message, cursor = evaluate_sensor(stale_lock_sensor, instance, resources, None)
        holder = lock_holder(db_url)
    assert holder is not None and holder.pid == pid, "the call still held the lock"
    assert (message, stale_alerts(webhook)) == (QUIET, [])
    assert cursor is None
    assert (holder.application_name, holder.state) == (CALLERS[caller], "active")
    # The name was the transaction's only: the caller's session is its own again.
    assert result.result()["name_after"] == caller


def test_a_call_whose_state_this_login_cannot_see_is_not_judged_stale(
    instance: DagsterInstance,
    db_url: str,
    job_url: str,
    login: Callable[[str | None], str],
    webhook: WebhookServer,
) -> None:
    """The sensor's login sees another login's application_name but not its state (that
    needs pg_read_all_stats): a pg_cron tick runs as reminders_cron, the sensor not."""
    sensor_url = make_conninfo(db_url, user=login("reminders_job"))
    resources = {
        "reminders_db": RemindersDatabaseResource(database_url=sensor_url),
        "alerts": AlertResource(webhook_url=webhook.url(), backoff_factor_s=0.01),
    }
    with call_waiting_on_a_row_lock(job_url, db_url, "pg_cron") as (pid, _):
        past_the_grace()
        seen = lock_holder(sensor_url)
        message, _ = evaluate_sensor(stale_lock_sensor, instance, resources, None)
    assert seen is not None and (seen.pid, seen.since, seen.state_change) == (pid, None, None)
    assert (message, stale_alerts(webhook)) == (QUIET, [])


def test_a_call_whose_transaction_is_left_open_is_stale_after_the_grace(
    instance: DagsterInstance,
    db_url: str,
    job_url: str,
    resources: dict,
    webhook: WebhookServer,
) -> None:
    with psycopg.connect(job_url, application_name="psql") as caller:
        assert caller.execute("SELECT status FROM reminders_run_day()").fetchone()[0] == "success"
        pid = caller.info.backend_pid
        past_the_grace()
        message, _ = evaluate_sensor(stale_lock_sensor, instance, resources, None)
        caller.rollback()
    why = "a one-call run (reminders_run_day()) whose transaction is left open, idle in transaction"
    assert message == f"alerted: stale lock held by pid {pid} ({why})"
    [alert] = stale_alerts(webhook)
    assert alert["facts"]["why stale"] == why


@pytest.mark.alone  # PgBouncer: see tests/integration/test_pooler.py
def test_through_a_transaction_pooler_the_call_is_in_progress_and_its_name_does_not_stay(
    instance: DagsterInstance, db_url: str, resources: dict, webhook: WebhookServer
) -> None:
    # One server connection for every client: whatever a call leaves on it, the next sees.
    with running_pgbouncer(db_url, mode="transaction", pool_size=1) as bouncer:
        pooled = bouncer.url(db_url)
        with call_waiting_on_a_row_lock(pooled, db_url, "PostgREST 12.2.3") as (pid, result):
            past_the_grace()
            message, _ = evaluate_sensor(stale_lock_sensor, instance, resources, None)
        assert (message, stale_alerts(webhook)) == (QUIET, [])
        assert result.result()["name_after"] == "PostgREST 12.2.3"
        with psycopg.connect(pooled, autocommit=True, application_name="next-client") as other:
            server_pid, name = other.execute(
                "SELECT pg_backend_pid(), current_setting('application_name')"
            ).fetchone()
        assert (server_pid, name) == (pid, "next-client"), "the same server connection, clean"
