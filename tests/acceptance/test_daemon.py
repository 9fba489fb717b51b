"""The reminders job operated through a real Dagster webserver and daemon (`dagster dev`).

One `dagster dev` (the `dagster_dev` fixture) on a free port, with a temporary
DAGSTER_HOME holding the shipped dagster.yaml, so the run queue and run monitoring
under test are the real ones.
Runs are held inside their lock window by a SHARE lock on `notifications` taken by
the test (the run's dispatch INSERT waits), so states are observed, not raced.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

import pytest
from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

from reminders_pipeline.db.connector import Database
from reminders_pipeline.orchestration.jobs import reminders_job
from tests.helpers.alert_servers import WebhookServer
from tests.helpers.dagster_dev import DAGSTER_BIN, REPO, RUN_TIMEOUT_S, Dagster
from tests.helpers.data import D1, D2, D3, notifications, runs, seed_three_days
from tests.helpers.locks import run_lock_holder
from tests.helpers.runs import NotificationsGate, wait_for

# Dagster processes start CPU-bound and these tests bound their waits: under xdist
# (.ci/run) they share one worker, so one Dagster deployment starts at a time.
pytestmark = [pytest.mark.acceptance, pytest.mark.xdist_group("dagster")]


def test_runs_queue_backfill_serially_and_a_killed_worker_frees_the_queue(
    dagster_dev: Dagster,
    db_url: str,
    db: Database,
    alert_webhook: WebhookServer,
    notifications_gate: Callable[[], NotificationsGate],
) -> None:
    dagster = dagster_dev
    due = seed_three_days(db)
    # 1. Two submissions: one runs, the other waits in the queue, then runs.
    started = time.monotonic()
    gate = notifications_gate()
    first, second = dagster.submit(D1), dagster.submit(D2)
    dagster.wait_status(first, DagsterRunStatus.STARTED)
    wait_for(
        lambda: (h := run_lock_holder(db_url)) and h.run_id == first,
        timeout=RUN_TIMEOUT_S,
        what="the first run to hold the run lock",
    )
    time.sleep(6)  # longer than the daemon's dequeue interval (5 s)
    assert dagster.status(first) == DagsterRunStatus.STARTED
    assert dagster.status(second) == DagsterRunStatus.QUEUED
    gate.open()
    dagster.wait_status(first, DagsterRunStatus.SUCCESS)
    dagster.wait_status(second, DagsterRunStatus.SUCCESS)
    assert dagster.window(first)[1] <= dagster.window(second)[0]
    print(f"two queued runs: {time.monotonic() - started:.1f}s")

    # 2. A three-day backfill through the CLI: one at a time, in date order.
    started = time.monotonic()
    subprocess.run(
        [str(DAGSTER_BIN), "job", "backfill", "-j", reminders_job.name]
        + ["--from", D1.isoformat(), "--to", D3.isoformat(), "--noprompt"]
        + ["-w", str(REPO / "workspace.yaml")],
        env={**os.environ, "DAGSTER_HOME": str(dagster.home)},
        cwd=dagster.home,
        check=True,
        capture_output=True,
        timeout=RUN_TIMEOUT_S,
    )
    backfill_runs = _backfill_runs(dagster)  # the CLI creates and submits them all
    assert len(backfill_runs) == 3
    for run in backfill_runs:
        dagster.wait_status(run.run_id, DagsterRunStatus.SUCCESS)
    by_date = sorted(backfill_runs, key=lambda r: r.tags["dagster/partition"])
    assert [r.tags["dagster/partition"] for r in by_date] == [d.isoformat() for d in (D1, D2, D3)]
    windows = [dagster.window(r.run_id) for r in by_date]
    for (_, earlier_end), (later_start, _) in zip(windows, windows[1:], strict=False):
        assert earlier_end <= later_start, "backfill partitions overlapped"
    assert set(notifications(db)) == due
    assert len(notifications(db)) == len(due), "a reminder was created twice"
    print(f"three-day backfill: {time.monotonic() - started:.1f}s")

    # 3. SIGKILL the worker of a running run: it fails, the lock is freed, the queue moves.
    started = time.monotonic()
    gate = notifications_gate()
    doomed, survivor = dagster.submit(D3), dagster.submit(D3)
    dagster.wait_status(doomed, DagsterRunStatus.STARTED)
    wait_for(
        lambda: (h := run_lock_holder(db_url)) and h.run_id == doomed,
        timeout=RUN_TIMEOUT_S,
        what="the doomed run to hold the run lock",
    )
    # Running, not only locked: its row is written just after the lock is taken.
    wait_for(
        lambda: any(r["dagster_run_id"] == doomed and r["status"] == "running" for r in runs(db)),
        timeout=30,
        what="the doomed run's 'running' row",
    )
    assert dagster.status(survivor) == DagsterRunStatus.QUEUED
    os.kill(dagster.worker_pid(doomed), signal.SIGKILL)
    dagster.wait_status(doomed, DagsterRunStatus.FAILURE)
    wait_for(
        lambda: (h := run_lock_holder(db_url)) is None or h.run_id == survivor,
        timeout=30,
        what="PostgreSQL to drop the killed run's lock",
    )
    wait_for(
        lambda: (h := run_lock_holder(db_url)) and h.run_id == survivor,
        timeout=RUN_TIMEOUT_S,
        what="the queued run to start and take the lock",
    )
    gate.open()
    dagster.wait_status(survivor, DagsterRunStatus.SUCCESS)
    rows = {r["dagster_run_id"]: r for r in runs(db)}
    assert rows[doomed]["status"] == "abandoned"  # marked by the survivor
    assert rows[survivor]["status"] == "success"
    assert set(notifications(db)) == due
    print(f"killed worker and recovery: {time.monotonic() - started:.1f}s")

    # The failure sensor, running in the daemon, alerted once for the killed run.
    alert = wait_for(
        lambda: [r.body for r in alert_webhook.received if r.body["kind"] == "run_failed"],
        timeout=60,
        what="the run failure alert",
    )
    assert [a["facts"]["run id"] for a in alert] == [doomed]
    engine_messages = [
        e.message for e in dagster.instance.all_logs(doomed, of_type=DagsterEventType.ENGINE_EVENT)
    ]
    assert "signal 9 (SIGKILL)" in alert[0]["text"], engine_messages
    assert alert[0]["link"] == f"http://127.0.0.1:{dagster.port}/runs/{doomed}"


def _backfill_runs(dagster: Dagster) -> list:
    return [
        run
        for run in dagster.instance.get_runs(RunsFilter(job_name=reminders_job.name))
        if "dagster/backfill" in run.tags
    ]
