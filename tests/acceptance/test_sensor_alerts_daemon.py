"""The alerting sensors in a real `dagster dev` daemon, on real conditions, one alert each.

One `dagster dev` (the `dagster_dev` fixture), sensors every 5 s, alerts to a local webhook:

1. a foreign session (a plain connection, as from psql) takes the run lock with
   pg_advisory_lock -> one stale-lock alert naming its pid;
2. while it holds it, runs submitted to Dagster are skipped -> one repeated-skips
   alert for the streak;
3. a real run held in its lock window past the long-run threshold (its dispatch
   INSERT waits behind a SHARE lock on `notifications`) -> one long-run alert.

Nothing is written into Dagster's storage by hand: the runs, the lock and the
reminder_runs rows the sensors read are what real runs and sessions produced. After
each alert the condition is left in place for more sensor ticks, to see it alert once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta

import psycopg
import pytest
from dagster import DagsterRunStatus

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.lock_keys import LOCK_KEY
from tests.helpers.alert_servers import WebhookServer
from tests.helpers.dagster_dev import SENSOR_INTERVAL_S, Dagster
from tests.helpers.data import add_assignment, add_mentor, runs
from tests.helpers.locks import run_lock_holder
from tests.helpers.runs import NotificationsGate, wait_for

# Dagster processes start CPU-bound and these tests bound their waits: under xdist
# (.ci/run) they share one worker, so one Dagster deployment starts at a time.
pytestmark = [pytest.mark.acceptance, pytest.mark.xdist_group("dagster")]

AS_OF = date(2026, 3, 1)
SKIPS = 2
LONG_RUN_S = 20
# Long enough for two more ticks of every sensor.
MORE_TICKS_S = 2 * SENSOR_INTERVAL_S + 2


@pytest.fixture(autouse=True)
def low_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    # Read by dagster_dev, which passes os.environ to `dagster dev`.
    monkeypatch.setenv("REMINDERS_LONG_RUN_S", str(LONG_RUN_S))
    monkeypatch.setenv("REMINDERS_SKIP_ALERT_AFTER", str(SKIPS))
    monkeypatch.setenv("REMINDERS_STALE_LOCK_GRACE_S", "0")


def _alerts(webhook: WebhookServer, kind: str) -> list[dict]:
    return [r.body for r in webhook.received if r.body["kind"] == kind]


def test_sensors_alert_once_each_on_a_stale_lock_a_skip_streak_and_a_long_run(
    dagster_dev: Dagster,
    db: Database,
    db_url: str,
    alert_webhook: WebhookServer,
    notifications_gate: Callable[[], NotificationsGate],
) -> None:
    dagster = dagster_dev
    add_assignment(db, add_mentor(db), AS_OF - timedelta(days=10))
    started = time.monotonic()

    # 1 and 2: a foreign session holds the run lock.
    foreign = psycopg.connect(db_url, autocommit=True, application_name="psql")
    try:
        foreign.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEY)
        foreign_pid = foreign.info.backend_pid
        stale = wait_for(
            lambda: _alerts(alert_webhook, "stale_lock"),
            timeout=60,
            what="the stale-lock alert",
        )
        print(f"stale-lock alert after {time.monotonic() - started:.1f}s")
        assert stale[0]["facts"]["pid"] == str(foreign_pid)
        assert stale[0]["facts"]["application_name"] == "psql"
        assert "not a reminders run" in stale[0]["facts"]["why stale"]

        skipped = []
        for _ in range(SKIPS):
            run_id = dagster.submit(AS_OF)
            dagster.wait_status(run_id, DagsterRunStatus.SUCCESS)
            skipped.append(run_id)
        rows = {r["dagster_run_id"]: r for r in runs(db)}
        for run_id in skipped:
            assert rows[run_id]["status"] == "skipped"
            assert rows[run_id]["blocked_by_pid"] == foreign_pid
        streak = wait_for(
            lambda: _alerts(alert_webhook, "repeated_skips"),
            timeout=60,
            what="the repeated-skips alert",
        )
        print(f"repeated-skips alert after {time.monotonic() - started:.1f}s")
        assert streak[0]["facts"]["skipped in a row"] == str(SKIPS)
        assert streak[0]["facts"]["pid"] == str(foreign_pid)

        time.sleep(MORE_TICKS_S)  # the lock still held, the streak unbroken: no repeat
        assert len(_alerts(alert_webhook, "stale_lock")) == 1
        assert len(_alerts(alert_webhook, "repeated_skips")) == 1
    finally:
        foreign.close()

    # 3: a real run held in its lock window past the threshold.
    gate = notifications_gate()
    try:
        long_run = dagster.submit(AS_OF)
        dagster.wait_status(long_run, DagsterRunStatus.STARTED)
        wait_for(
            lambda: (h := run_lock_holder(db_url)) and h.run_id == long_run,
            timeout=90,
            what="the long run to hold the run lock",
        )
        held_from = time.monotonic()
        alert = wait_for(
            lambda: _alerts(alert_webhook, "long_run"),
            timeout=LONG_RUN_S + 60,
            what="the long-run alert",
        )
        after = time.monotonic() - held_from
        print(f"long-run alert {after:.1f}s after the run took the lock")
        assert after >= LONG_RUN_S - 5, f"alerted after {after:.1f}s, threshold {LONG_RUN_S}s"
        assert alert[0]["facts"]["run id"] == long_run
        assert alert[0]["facts"]["holds the run lock"] == "yes"
        assert alert[0]["facts"]["threshold"] == f"{LONG_RUN_S} s"
        assert alert[0]["link"] == f"http://127.0.0.1:{dagster.port}/runs/{long_run}"
        time.sleep(MORE_TICKS_S)  # still running, still long: no repeat
        assert dagster.status(long_run) == DagsterRunStatus.STARTED
        assert len(_alerts(alert_webhook, "long_run")) == 1
    finally:
        gate.open()
    dagster.wait_status(long_run, DagsterRunStatus.SUCCESS)
    assert {r["dagster_run_id"]: r["status"] for r in runs(db)}[long_run] == "success"

    # One alert per condition, and none about the run that held its own lock.
    kinds = sorted(r.body["kind"] for r in alert_webhook.received)
    assert kinds == ["long_run", "repeated_skips", "stale_lock"], kinds
    print(f"three scenarios: {time.monotonic() - started:.1f}s")
