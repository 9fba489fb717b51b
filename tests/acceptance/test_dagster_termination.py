"""Dagster stops a run: from the UI (GraphQL terminate) and past dagster/max_runtime.

One real `dagster dev` (the shipped dagster.yaml, run monitoring polling every
2 s instead of 60). Every run is held at its dispatch INSERT by a SHARE lock on
notifications that stays closed while Dagster stops it, so the INSERT can only
leave the server because the run cancelled it there. The server is checked right
after the stop, while Dagster and the queue are alive: no statement of the run
left, no lock, a 'failed' row naming the cause, and the next queued run starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dagster import DagsterRunStatus
from psycopg.rows import dict_row

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.lock_holder import application_name_for
from tests.helpers.dagster_dev import REPO, RUN_TIMEOUT_S, Dagster
from tests.helpers.data import D1, D2, D3, add_assignment, add_mentor, runs
from tests.helpers.locks import run_lock_holder
from tests.helpers.runs import NotificationsGate, backends_waiting_on, wait_for

# Dagster processes start CPU-bound and these tests bound their waits: under xdist
# (.ci/run) they share one worker, so one Dagster deployment starts at a time.
pytestmark = [pytest.mark.acceptance, pytest.mark.xdist_group("dagster")]

# Long enough for a run to start and reach the gate; short enough for a test.
MAX_RUNTIME_S = 25
MONITORING_POLL_S = 2
STOPPED_WITHIN_S = 10
FINISHED = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


@pytest.fixture(autouse=True)
def short_max_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    # Read by jobs.py in the code server that dagster dev starts with os.environ.
    monkeypatch.setenv("REMINDERS_MAX_RUNTIME_S", str(MAX_RUNTIME_S))


@pytest.fixture
def dagster_yaml(reminders_env: dict[str, str]) -> Path:
    path = Path(reminders_env["DAGSTER_HOME"]) / "dagster.yaml"
    shipped = (REPO / "dagster.yaml").read_text()
    assert "poll_interval_seconds: 60" in shipped
    path.write_text(
        shipped.replace("poll_interval_seconds: 60", f"poll_interval_seconds: {MONITORING_POLL_S}")
    )
    return path


def statements_of(url: str, run_id: str) -> list[dict[str, Any]]:
    """The run's statements still active on the server (its lock session is named after it)."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT pid, state, wait_event_type, query FROM pg_stat_activity "
            "WHERE application_name = %s AND state = 'active'",
            (application_name_for(run_id),),
        ).fetchall()


def waiting_at_gate(url: str, run_id: str) -> bool:
    """The run holds the lock and a dispatch INSERT waits at the gate."""
    h = run_lock_holder(url)
    return bool(h and h.run_id == run_id and backends_waiting_on(url, "notifications"))


def row_of(db: Database, run_id: str) -> dict[str, Any] | None:
    return next((r for r in runs(db) if r["dagster_run_id"] == run_id), None)


def assert_stopped_cleanly(
    dagster: Dagster, db: Database, db_url: str, run_id: str, since: float
) -> dict[str, Any]:
    """Right after Dagster stops the run: nothing of it on the server, a failed row."""
    wait_for(
        lambda: (
            not statements_of(db_url, run_id) and not backends_waiting_on(db_url, "notifications")
        ),
        timeout=STOPPED_WITHIN_S,
        what=f"run {run_id}'s INSERT to be cancelled on the server",
    )
    cancelled_after = time.monotonic() - since
    wait_for(
        lambda: (h := run_lock_holder(db_url)) is None or h.run_id != run_id,
        timeout=STOPPED_WITHIN_S,
        what=f"run {run_id} to release the run lock",
    )
    row = wait_for(
        lambda: (r := row_of(db, run_id)) and r["status"] != "running" and r,
        timeout=STOPPED_WITHIN_S,
        what=f"run {run_id}'s outcome in reminder_runs",
    )
    status = wait_for(
        lambda: (s := dagster.status(run_id)) in FINISHED and s,
        timeout=RUN_TIMEOUT_S,
        what=f"run {run_id} to end in Dagster",
    )
    print(
        f"run {run_id}: cancelled {cancelled_after:.1f}s after the stop; {status}; {row['error']}"
    )
    assert row["status"] == "failed", row
    assert row["error"].startswith("terminated by SIGINT: Dagster is terminating the run"), row
    return row


def test_terminate_and_max_runtime_end_the_run_cleanly_and_the_queue_moves(
    dagster_dev: Dagster,
    db: Database,
    db_url: str,
    notifications_gate: Callable[[], NotificationsGate],
) -> None:
    dagster = dagster_dev
    mentor = add_mentor(db)
    for day in (D1, D2, D3):
        add_assignment(db, mentor, day - timedelta(days=10))
    gate = notifications_gate()
    try:
        terminated, timed_out = dagster.submit(D1), dagster.submit(D2)
        wait_for(
            lambda: waiting_at_gate(db_url, terminated),
            timeout=RUN_TIMEOUT_S,
            what="the first run to wait at the gate holding the lock",
        )
        assert dagster.status(timed_out) == DagsterRunStatus.QUEUED

        # 1. Terminate from the UI (the GraphQL mutation the UI's button sends).
        stopped = time.monotonic()
        dagster.client.terminate_run(terminated)
        assert_stopped_cleanly(dagster, db, db_url, terminated, stopped)

        # The queue moves: the next run starts, takes the lock and reaches the gate.
        wait_for(
            lambda: waiting_at_gate(db_url, timed_out),
            timeout=RUN_TIMEOUT_S,
            what="the queued run to start and reach the gate",
        )
        last = dagster.submit(D3)

        # 2. dagster/max_runtime: run monitoring terminates the run held at the gate.
        record = dagster.instance.get_run_record_by_id(timed_out)
        assert record is not None and record.start_time is not None
        wait_for(
            lambda: dagster.status(timed_out) != DagsterRunStatus.STARTED,
            timeout=MAX_RUNTIME_S + RUN_TIMEOUT_S,
            what="run monitoring to stop the run past its max runtime",
        )
        row = assert_stopped_cleanly(dagster, db, db_url, timed_out, time.monotonic())
        assert f"maximum runtime of {MAX_RUNTIME_S} seconds" in row["error"], row

        # The next run starts; with the gate open it succeeds.
        wait_for(
            lambda: waiting_at_gate(db_url, last),
            timeout=RUN_TIMEOUT_S,
            what="the last queued run to start",
        )
        gate.open()
        dagster.wait_status(last, DagsterRunStatus.SUCCESS)
    finally:
        gate.open()

    statuses = {r["dagster_run_id"]: r["status"] for r in runs(db)}
    assert statuses == {terminated: "failed", timed_out: "failed", last: "success"}
    assert run_lock_holder(db_url) is None
