"""A zombie run in a real `dagster dev`: the sensor in the daemon fails it and the queue moves.

A run whose worker died together with whatever would report it (host crash) stays
STARTED in Dagster. That state is written straight into the instance's storage while
`dagster dev` runs: a STARTED run of the job with the singleton tag and no reminders
session, as a crash leaves it (its 'running' row in reminder_runs included). A real
run submitted behind it waits in the queue until zombie_run_sensor, with a short
grace, marks the zombie failed; then it starts and succeeds.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
from dagster import DagsterEventType, DagsterRunStatus

from reminders_pipeline.db.connector import Database
from reminders_pipeline.orchestration.jobs import SINGLETON_TAG, reminders_job
from tests.helpers.alert_servers import WebhookServer
from tests.helpers.dagster_dev import Dagster
from tests.helpers.dagster_runs import job_run
from tests.helpers.data import add_assignment, add_mentor, runs
from tests.helpers.runs import wait_for

# Dagster processes start CPU-bound and these tests bound their waits: under xdist
# (.ci/run) they share one worker, so one Dagster deployment starts at a time.
pytestmark = [pytest.mark.acceptance, pytest.mark.xdist_group("dagster")]

# Well above the few seconds a queued run takes from launch to its lock connection.
GRACE_S = 20
AS_OF = date(2026, 3, 1)


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    # Read by dagster_dev, which passes os.environ to `dagster dev`.
    monkeypatch.setenv("REMINDERS_ZOMBIE_GRACE_S", str(GRACE_S))
    monkeypatch.setenv("REMINDERS_ZOMBIE_INTERVAL_S", "5")


def test_a_zombie_run_is_failed_by_the_sensor_and_the_queued_run_then_succeeds(
    dagster_dev: Dagster,
    db: Database,
    alert_webhook: WebhookServer,
) -> None:
    dagster = dagster_dev
    mentor = add_mentor(db)
    add_assignment(db, mentor, AS_OF - timedelta(days=10))

    started = time.monotonic()
    zombie = job_run(
        dagster.instance,
        DagsterRunStatus.STARTED,
        **{SINGLETON_TAG: reminders_job.tags[SINGLETON_TAG]},
    )
    with db.connection() as conn:  # it had taken the lock and begun before the crash
        conn.execute(
            "INSERT INTO reminder_runs (status, as_of, dagster_run_id, trigger, lock_backend_pid)"
            " VALUES ('running', %s, %s, 'manual', 1)",
            (AS_OF, zombie),
        )
    waiting = dagster.submit(AS_OF)

    # The zombie holds the queue's only slot: the new run waits behind it.
    dagster.wait_status(waiting, DagsterRunStatus.QUEUED)
    time.sleep(6)  # longer than the daemon's dequeue interval (5 s)
    assert dagster.status(zombie) == DagsterRunStatus.STARTED
    assert dagster.status(waiting) == DagsterRunStatus.QUEUED

    wait_for(
        lambda: dagster.status(zombie) == DagsterRunStatus.FAILURE,
        timeout=GRACE_S + 40,
        what="zombie_run_sensor to mark the zombie run failed",
    )
    freed_after = time.monotonic() - started
    assert freed_after >= GRACE_S, "failed before the grace period was over"
    dagster.wait_status(waiting, DagsterRunStatus.SUCCESS)
    done_after = time.monotonic() - started
    print(f"zombie freed after {freed_after:.1f}s, queued run done after {done_after:.1f}s")

    [failure] = dagster.instance.all_logs(zombie, of_type=DagsterEventType.RUN_FAILURE)
    assert "No reminders database session" in failure.dagster_event.message
    assert "the run worker is gone" in failure.dagster_event.message

    rows = {r["dagster_run_id"]: r for r in runs(db)}
    assert rows[zombie]["status"] == "abandoned"  # marked by the run that followed
    assert rows[waiting]["status"] == "success"

    alerts = wait_for(
        lambda: [r.body for r in alert_webhook.received if r.body["kind"] == "zombie_run"],
        timeout=10,
        what="the zombie alert",
    )
    time.sleep(6)  # another sensor interval: still one alert
    alerts = [r.body for r in alert_webhook.received if r.body["kind"] == "zombie_run"]
    assert [a["facts"]["run id"] for a in alerts] == [zombie]
    assert alerts[0]["link"] == f"http://127.0.0.1:{dagster.port}/runs/{zombie}"
