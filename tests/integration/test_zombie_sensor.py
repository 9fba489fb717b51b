"""zombie_run_sensor over a test instance and a real PostgreSQL: dead runs fail, live ones stay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dagster import DagsterInstance, DagsterRunStatus

from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.db.lock_holder import application_name_for
from reminders_pipeline.orchestration import sensors
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.resources import RemindersDatabaseResource
from tests.helpers.alert_servers import WebhookServer
from tests.helpers.dagster_runs import evaluate_sensor, failure_sensor_ticks, job_run, report
from tests.helpers.settings import override

GRACE_S = 1


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    override(monkeypatch, "ZOMBIE_GRACE_S", GRACE_S)


def evaluate(instance: DagsterInstance, resources: dict, cursor: str | None) -> tuple[str, str]:
    return evaluate_sensor(sensors.zombie_run_sensor, instance, resources, cursor)


def zombie_alerts(webhook: WebhookServer) -> list[dict[str, Any]]:
    return [r.body for r in webhook.received if r.body["kind"] == "zombie_run"]


def session_for(db_url: str, run_id: str) -> psycopg.Connection:
    """A reminders session for the run that does not hold the lock: a run between steps."""
    return psycopg.connect(db_url, autocommit=True, application_name=application_name_for(run_id))


def test_a_started_run_without_a_session_is_failed_and_alerted_once_a_live_one_is_not(
    instance: DagsterInstance, db_url: str, resources: dict, webhook: WebhookServer
) -> None:
    long_ago = datetime.now(UTC) - timedelta(minutes=30)
    dead = job_run(instance, DagsterRunStatus.STARTED, started_at=long_ago)
    between_steps = job_run(instance, DagsterRunStatus.STARTED, started_at=long_ago)
    holding_lock = job_run(instance, DagsterRunStatus.STARTED, started_at=long_ago)
    other_db = psycopg.conninfo.make_conninfo(db_url, dbname="postgres")

    with (
        session_for(db_url, between_steps),
        RunLock(other_db, holding_lock) as lock,  # another database of the server counts too
    ):
        assert lock.try_acquire()
        live = RemindersDatabaseResource(database_url=db_url).live_run_ids()
        assert live >= {between_steps, holding_lock}
        assert dead not in live

        message, cursor = evaluate(instance, resources, None)
        assert message == "no zombie run", "one look is never enough"
        assert set(json.loads(cursor)["missing"]) == {dead}
        assert instance.get_run_by_id(dead).status == DagsterRunStatus.STARTED

        time.sleep(GRACE_S + 0.2)
        message, cursor = evaluate(instance, resources, cursor)
        assert f"run {dead} had no session" in message
        assert instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
        for alive in (between_steps, holding_lock):
            assert instance.get_run_by_id(alive).status == DagsterRunStatus.STARTED

        time.sleep(GRACE_S + 0.2)
        message, cursor = evaluate(instance, resources, cursor)
        assert message == "no zombie run"
        assert json.loads(cursor) == {"missing": {}}

    [alert] = zombie_alerts(webhook)
    assert alert["facts"]["run id"] == dead
    assert alert["facts"]["status was"] == "STARTED"
    assert alert["facts"]["partition"] == "2026-03-29"
    assert alert["link"] == f"http://dagster.test/runs/{dead}"

    failure = instance.get_records_for_run(dead).records[-1].event_log_entry
    assert failure.dagster_event.event_type_value == "PIPELINE_FAILURE"
    assert f"'reminders-run:{dead}'" in failure.dagster_event.message
    assert "the run worker is gone" in failure.dagster_event.message


def test_a_run_that_just_started_is_not_failed_before_its_lock_connection_opens(
    instance: DagsterInstance,
    resources: dict,
    webhook: WebhookServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    override(monkeypatch, "ZOMBIE_GRACE_S", 60)
    run_id = job_run(instance, DagsterRunStatus.STARTED)
    # Even with a cursor claiming the session has been missing for long.
    stale = json.dumps({"missing": {run_id: "2000-01-01T00:00:00+00:00"}})
    message, cursor = evaluate(instance, resources, stale)
    assert message == "no zombie run"
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
    assert zombie_alerts(webhook) == []


def test_a_starting_run_without_a_session_is_failed_too(
    instance: DagsterInstance, resources: dict, webhook: WebhookServer
) -> None:
    run_id = job_run(instance, DagsterRunStatus.NOT_STARTED)
    report(instance, run_id, DagsterRunStatus.STARTING)  # launched, worker never came up
    _, cursor = evaluate(instance, resources, None)
    time.sleep(GRACE_S + 0.2)
    evaluate(instance, resources, cursor)
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE
    assert [a["facts"]["status was"] for a in zombie_alerts(webhook)] == ["STARTING"]


def test_no_verdict_when_the_reminders_database_is_down(
    instance: DagsterInstance, webhook: WebhookServer
) -> None:
    down = {
        "reminders_db": RemindersDatabaseResource(database_url="postgresql://x@127.0.0.1:1/x"),
        "alerts": AlertResource(webhook_url=webhook.url()),
    }
    run_id = job_run(
        instance, DagsterRunStatus.STARTED, started_at=datetime.now(UTC) - timedelta(hours=1)
    )
    earlier = json.dumps({"missing": {run_id: "2000-01-01T00:00:00+00:00"}})
    message, cursor = evaluate(instance, down, earlier)
    assert "failed: DatabaseUnavailable" in message
    assert cursor == earlier
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED


def test_the_off_switch(
    instance: DagsterInstance,
    resources: dict,
    webhook: WebhookServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    override(monkeypatch, "ZOMBIE_SENSOR", False)
    run_id = job_run(
        instance, DagsterRunStatus.STARTED, started_at=datetime.now(UTC) - timedelta(hours=1)
    )
    earlier = json.dumps({"missing": {run_id: "2000-01-01T00:00:00+00:00"}})
    message, _ = evaluate(instance, resources, earlier)
    assert message.startswith("off")
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED


def test_grace_interval_and_switch_come_from_the_environment(reminders_env: dict) -> None:
    # A fresh interpreter: the settings are read when the code location loads.
    probe = (
        "from reminders_pipeline import settings as c; "
        "from reminders_pipeline.orchestration import sensors as s; "
        "print(c.ZOMBIE_GRACE_S.get(), c.zombie_interval_s(), c.ZOMBIE_SENSOR.get(),"
        " s.zombie_run_sensor.default_status.value, s.zombie_run_sensor.minimum_interval_seconds)"
    )

    def settings(**env: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", probe],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        ).stdout.strip()

    assert settings() == "300 60 True RUNNING 60"
    assert (
        settings(
            REMINDERS_ZOMBIE_GRACE_S="120",
            REMINDERS_ZOMBIE_INTERVAL_S="15",
            REMINDERS_ZOMBIE_SENSOR="off",
        )
        == "120 15 False STOPPED 15"
    )


def test_a_zombie_gets_one_alert_not_a_second_one_from_the_failure_sensor(
    instance: DagsterInstance, resources: dict, webhook: WebhookServer
) -> None:
    failure_cursor = failure_sensor_ticks(instance, resources, None)
    long_ago = datetime.now(UTC) - timedelta(minutes=30)
    dead = job_run(instance, DagsterRunStatus.STARTED, started_at=long_ago)

    _, cursor = evaluate(instance, resources, None)
    time.sleep(GRACE_S + 0.2)
    evaluate(instance, resources, cursor)
    assert instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
    failure_sensor_ticks(instance, resources, failure_cursor, ticks=2)

    assert [a["facts"]["run id"] for a in zombie_alerts(webhook)] == [dead]
    assert [r.body for r in webhook.received if r.body["kind"] == "run_failed"] == []
