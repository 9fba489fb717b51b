"""Alerting sensors over runs in every state: each alert fires once, at a real local webhook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    SensorDefinition,
    build_run_status_sensor_context,
)

from reminders_pipeline import settings
from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.core.runlog import RunCounts, RunLog
from reminders_pipeline.db.connector import Database
from reminders_pipeline.orchestration import sensors
from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.jobs import reminders_job
from reminders_pipeline.orchestration.resources import (
    ReminderRunResource,
    RemindersDatabaseResource,
)
from reminders_pipeline.orchestration.sensors.common import ZOMBIE_TAG, alert_destinations
from reminders_pipeline.orchestration.sensors.failure import alert_failed_run
from tests.helpers.alert_servers import WebhookServer
from tests.helpers.dagster_runs import evaluate_sensor, failure_sensor_ticks, job_run, report
from tests.helpers.settings import override

NOW = datetime.now(UTC)


def evaluate(
    sensor: SensorDefinition, instance: DagsterInstance, resources: dict, cursor: str | None
) -> tuple[str, str | None]:
    return evaluate_sensor(sensor, instance, resources, cursor)


def succeed(db_url: str, log: RunLog, dagster_run_id: str) -> None:
    """A successful run in the log: success is recorded on the session holding the lock."""
    with RunLock(db_url, dagster_run_id) as lock:
        assert lock.try_acquire()
        row_id = log.start(NOW.date(), dagster_run_id, "manual", lock.backend_pid)
        with lock.transaction() as conn:
            log.succeeded(row_id, RunCounts(), conn)


def alerts_of(webhook: WebhookServer, kind: str) -> list[dict[str, Any]]:
    return [r.body for r in webhook.received if r.body["kind"] == kind]


def running_row(db: Database, dagster_run_id: str | None, minutes_ago: int, pid: int = 1) -> int:
    with db.connection() as conn:
        row = conn.execute(
            "INSERT INTO reminder_runs (status, as_of, dagster_run_id, trigger, started_at,"
            " lock_backend_pid) VALUES ('running', '2026-03-30', %s, 'cli',"
            " now() - make_interval(mins => %s), %s) RETURNING id",
            (dagster_run_id, minutes_ago, pid),
        ).fetchone()
    return row["id"]


# ------------------------------------------------------------------ long runs


def test_long_run_alerts_once_per_run_in_dagster_and_outside_it(
    instance: DagsterInstance, db: Database, resources: dict, webhook: WebhookServer
) -> None:
    now = datetime.now(UTC)
    long = job_run(instance, DagsterRunStatus.STARTED, started_at=now - timedelta(minutes=45))
    job_run(instance, DagsterRunStatus.STARTED, started_at=now - timedelta(minutes=5))
    job_run(instance, DagsterRunStatus.QUEUED)  # waiting in the queue is not running
    job_run(instance, DagsterRunStatus.SUCCESS, started_at=now - timedelta(hours=3))
    running_row(db, long, 45)  # the same run seen in the log: covered by the Dagster alert
    cli_row = running_row(db, "cli-run-0001", 40)
    running_row(db, "cli-run-0002", 10)
    dead = job_run(instance, DagsterRunStatus.FAILURE, started_at=now - timedelta(minutes=50))
    running_row(db, dead, 50)  # its worker was killed: the row stays 'running'

    message, cursor = evaluate(sensors.long_running_reminders_sensor, instance, resources, None)

    alerts = alerts_of(webhook, "long_run")
    assert [a["facts"]["run id"] for a in alerts] == [long, "cli-run-0001", dead]
    dagster_alert, cli_alert, dead_alert = alerts
    assert "its Dagster run is FAILURE" in dead_alert["facts"]["seen in"]
    assert dagster_alert["facts"]["elapsed"] == "45 min"
    assert dagster_alert["facts"]["started"].startswith(
        (now - timedelta(minutes=45)).date().isoformat()
    )
    assert dagster_alert["facts"]["holds the run lock"] == "no"
    assert dagster_alert["link"] == f"http://dagster.test/runs/{long}"
    assert cli_alert["facts"]["reminder_runs id"] == str(cli_row)
    assert "reminder_runs" in cli_alert["facts"]["seen in"]
    assert long in message

    again, cursor = evaluate(sensors.long_running_reminders_sensor, instance, resources, cursor)
    assert len(alerts_of(webhook, "long_run")) == 3, "each long run alerts once"
    # The tick after the alert still says what is wrong, not "no run over ...".
    assert again.startswith("already alerted: "), again
    assert f"run {long} in progress for 45 min" in again
    assert f"reminder_runs {cli_row} 'running' for 40 min" in again

    # A finished run leaves the cursor, which only remembers what is still running.
    report(instance, long, DagsterRunStatus.SUCCESS)
    _, cursor = evaluate(sensors.long_running_reminders_sensor, instance, resources, cursor)
    assert long not in (cursor or "")


def test_long_run_that_holds_the_lock_says_so(
    instance: DagsterInstance, db_url: str, resources: dict, webhook: WebhookServer
) -> None:
    run_id = job_run(instance, DagsterRunStatus.STARTED, started_at=NOW - timedelta(minutes=31))
    with RunLock(db_url, run_id) as lock:
        assert lock.try_acquire()
        evaluate(sensors.long_running_reminders_sensor, instance, resources, None)
    [alert] = alerts_of(webhook, "long_run")
    assert alert["facts"]["holds the run lock"] == "yes"


# ------------------------------------------------------------------ failures


def test_failed_run_alerts_once_with_its_error_and_a_link(
    instance: DagsterInstance, resources: dict, webhook: WebhookServer
) -> None:
    # The first evaluation only sets the cursor: old failures do not alert.
    job_run(instance, DagsterRunStatus.FAILURE)
    cursor = failure_sensor_ticks(instance, resources, None)
    assert alerts_of(webhook, "run_failed") == []

    result = reminders_job.execute_in_process(
        instance=instance,
        partition_key="2026-03-30",
        raise_on_error=False,
        resources={"reminders": ReminderRunResource(database_url="postgresql://x@127.0.0.1:1/x")},
    )
    assert not result.success

    failure_sensor_ticks(instance, resources, cursor, ticks=2)

    [alert] = alerts_of(webhook, "run_failed")
    assert alert["facts"]["run id"] == result.run_id
    assert alert["facts"]["partition"] == "2026-03-30"
    assert "cannot connect to the reminders database" in alert["text"]
    assert alert["link"] == f"http://dagster.test/runs/{result.run_id}"


def test_crashed_run_alert_explains_the_crash(
    instance: DagsterInstance, resources: dict, webhook: WebhookServer
) -> None:
    run_id = job_run(instance, DagsterRunStatus.STARTED)
    instance.report_engine_event(
        f"[DagsterApiServer] Run execution process for {run_id} was terminated by signal 9"
        " (SIGKILL).",
        instance.get_run_by_id(run_id),
    )
    instance.report_run_failed(instance.get_run_by_id(run_id))
    failure = instance.get_records_for_run(run_id).records[-1].event_log_entry.dagster_event
    context = build_run_status_sensor_context(
        sensor_name="reminders_run_failure_sensor",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
        resources=resources,
    ).for_run_failure()
    alert_failed_run(context, resources["alerts"])
    [alert] = alerts_of(webhook, "run_failed")
    assert "terminated by signal 9 (SIGKILL)" in alert["text"]


# ------------------------------------------------------------------ repeated skips


def test_repeated_skips_alert_once_per_streak_naming_the_holder(
    instance: DagsterInstance, db: Database, db_url: str, resources: dict, webhook: WebhookServer
) -> None:
    log = RunLog(db)
    sensor = sensors.repeated_skips_sensor
    succeed(db_url, log, "r-ok")
    log.tick_skipped(NOW.date(), "Skipped: run r-stuck is STARTED", blocking_run_id="r-stuck")

    _, cursor = evaluate(sensor, instance, resources, None)
    assert alerts_of(webhook, "repeated_skips") == [], "one skip is not a streak"

    with RunLock(db_url, "r-stuck") as lock:
        assert lock.try_acquire()
        log.skipped(NOW.date(), "r-2", "schedule", lock.holder())
        message, cursor = evaluate(sensor, instance, resources, cursor)
        pid = lock.backend_pid
    [alert] = alerts_of(webhook, "repeated_skips")
    assert alert["facts"]["skipped in a row"] == "2"
    assert alert["facts"]["pid"] == str(pid)
    assert "r-stuck" in alert["facts"]["lock holder now"]
    assert "2 skipped runs in a row" in message

    log.tick_skipped(NOW.date(), "Skipped again", blocking_run_id="r-stuck")
    _, cursor = evaluate(sensor, instance, resources, cursor)
    assert len(alerts_of(webhook, "repeated_skips")) == 1, "a longer streak does not re-alert"

    succeed(db_url, log, "r-ok2")
    _, cursor = evaluate(sensor, instance, resources, cursor)
    log.tick_skipped(NOW.date(), "Skipped", blocking_run_id="r-x")
    log.tick_skipped(NOW.date(), "Skipped", blocking_run_id="r-x")
    _, cursor = evaluate(sensor, instance, resources, cursor)
    second = alerts_of(webhook, "repeated_skips")
    assert len(second) == 2, "a new streak alerts again"
    assert second[1]["facts"]["lock holder now"] == "nobody"
    assert second[1]["facts"]["blocked by (last skip)"] == "run r-x"


# ------------------------------------------------------------------ stale lock


@pytest.fixture
def no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    override(monkeypatch, "STALE_LOCK_GRACE_S", 0)


@pytest.mark.parametrize(
    "status", [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
)
def test_lock_held_for_a_finished_run_alerts_once_with_the_pid(
    instance: DagsterInstance,
    db_url: str,
    resources: dict,
    webhook: WebhookServer,
    no_grace: None,
    status: DagsterRunStatus,
) -> None:
    run_id = job_run(instance, status)
    with RunLock(db_url, run_id) as lock:
        assert lock.try_acquire()
        message, cursor = evaluate(sensors.stale_lock_sensor, instance, resources, None)
        evaluate(sensors.stale_lock_sensor, instance, resources, cursor)
        pid = lock.backend_pid
        assert lock.holder() is not None, "the sensor never terminates the session"
    [alert] = alerts_of(webhook, "stale_lock")
    assert alert["facts"]["pid"] == str(pid)
    assert alert["facts"]["run id"] == run_id
    assert alert["facts"]["why stale"] == f"its Dagster run is {status.value}"
    assert alert["facts"]["to free it"] == f"SELECT pg_terminate_backend({pid});"
    assert f"pid {pid}" in message


def test_lock_held_by_a_run_unknown_to_dagster_alerts(
    instance: DagsterInstance, db_url: str, resources: dict, webhook: WebhookServer, no_grace: None
) -> None:
    with RunLock(db_url, "gone-run-42") as lock:
        assert lock.try_acquire()
        evaluate(sensors.stale_lock_sensor, instance, resources, None)
    [alert] = alerts_of(webhook, "stale_lock")
    assert "unknown to Dagster" in alert["facts"]["why stale"]


def test_lock_held_by_a_run_in_progress_is_not_stale(
    instance: DagsterInstance,
    db: Database,
    db_url: str,
    resources: dict,
    webhook: WebhookServer,
    no_grace: None,
) -> None:
    in_dagster = job_run(instance, DagsterRunStatus.STARTED)
    with RunLock(db_url, in_dagster) as lock:
        assert lock.try_acquire()
        evaluate(sensors.stale_lock_sensor, instance, resources, None)
    # A CLI run in another Dagster instance: unknown here, but its 'running' row is live.
    with RunLock(db_url, "cli-elsewhere") as lock:
        assert lock.try_acquire()
        running_row(db, "cli-elsewhere", 0, lock.backend_pid)
        evaluate(sensors.stale_lock_sensor, instance, resources, None)
    # Nobody holds it at all.
    message, _ = evaluate(sensors.stale_lock_sensor, instance, resources, None)
    assert alerts_of(webhook, "stale_lock") == []
    assert "free or held by a run in progress" in message


def test_a_just_opened_lock_session_gets_a_grace_period(
    instance: DagsterInstance, db_url: str, resources: dict, webhook: WebhookServer
) -> None:
    assert settings.STALE_LOCK_GRACE_S.get() > 0
    with RunLock(db_url, "starting-run") as lock:
        assert lock.try_acquire()
        evaluate(sensors.stale_lock_sensor, instance, resources, None)
    assert alerts_of(webhook, "stale_lock") == []


def test_sensors_report_a_database_that_is_down_and_do_not_fail(
    instance: DagsterInstance, webhook: WebhookServer
) -> None:
    down = {
        "reminders_db": RemindersDatabaseResource(database_url="postgresql://x@127.0.0.1:1/x"),
        "alerts": AlertResource(webhook_url=webhook.url()),
    }
    for sensor in (
        sensors.long_running_reminders_sensor,
        sensors.repeated_skips_sensor,
        sensors.stale_lock_sensor,
    ):
        message, _ = evaluate(sensor, instance, down, None)
        assert "failed: DatabaseUnavailable" in message


# ------------------------------------------------------------------ what ticks say


def test_stale_lock_ticks_after_the_alert_say_it_is_still_held_until_it_is_freed(
    instance: DagsterInstance, db_url: str, resources: dict, webhook: WebhookServer, no_grace: None
) -> None:
    run_id = job_run(instance, DagsterRunStatus.FAILURE)
    with RunLock(db_url, run_id) as lock:
        assert lock.try_acquire()
        first, cursor = evaluate(sensors.stale_lock_sensor, instance, resources, None)
        second, cursor = evaluate(sensors.stale_lock_sensor, instance, resources, cursor)
        third, cursor = evaluate(sensors.stale_lock_sensor, instance, resources, cursor)
        pid = lock.backend_pid
    freed, _ = evaluate(sensors.stale_lock_sensor, instance, resources, cursor)

    assert first.startswith(f"alerted: stale lock held by pid {pid}"), first
    assert "its Dagster run is FAILURE" in first
    for message in (second, third):
        assert message.startswith(f"already alerted: stale lock held by pid {pid}"), message
        assert run_id in message
        assert "free" not in message
    assert len(alerts_of(webhook, "stale_lock")) == 1
    assert freed == "the run lock is free or held by a run in progress"


def test_repeated_skip_ticks_after_the_alert_count_the_streak_until_it_breaks(
    instance: DagsterInstance, db: Database, resources: dict, webhook: WebhookServer
) -> None:
    log = RunLog(db)
    sensor = sensors.repeated_skips_sensor
    for _ in range(2):
        log.tick_skipped(NOW.date(), "Skipped: run r-stuck is STARTED", blocking_run_id="r-stuck")
    fired, cursor = evaluate(sensor, instance, resources, None)
    after, cursor = evaluate(sensor, instance, resources, cursor)
    latest = log.tick_skipped(NOW.date(), "Skipped again", blocking_run_id="r-stuck")
    longer, cursor = evaluate(sensor, instance, resources, cursor)
    succeed(db.url, log, "r-ok")
    broken, cursor = evaluate(sensor, instance, resources, cursor)

    assert fired.startswith("alerted: 2 skipped runs in a row"), fired
    assert after.startswith("already alerted: 2 skipped runs in a row since "), after
    assert longer.startswith("already alerted: 3 skipped runs in a row since "), longer
    assert f"latest: reminder_runs {latest}" in longer
    assert len(alerts_of(webhook, "repeated_skips")) == 1
    assert broken == f"no streak of {settings.SKIP_ALERT_AFTER.get()} skipped runs"


def test_failure_sensor_ticks_name_the_failed_run_and_its_reason(
    instance: DagsterInstance, resources: dict, webhook: WebhookServer
) -> None:
    messages: list[str | None] = []
    cursor = failure_sensor_ticks(instance, resources, None)  # the first tick sets the cursor
    cursor = failure_sensor_ticks(instance, resources, cursor, messages=messages)
    assert messages == ["no failed run of reminders_job or delivery_job since the last tick"]

    result = reminders_job.execute_in_process(
        instance=instance,
        partition_key="2026-03-30",
        raise_on_error=False,
        resources={"reminders": ReminderRunResource(database_url="postgresql://x@127.0.0.1:1/x")},
    )
    zombie = job_run(instance, DagsterRunStatus.FAILURE, **{ZOMBIE_TAG: "true"})
    messages.clear()
    failure_sensor_ticks(instance, resources, cursor, ticks=3, messages=messages)

    alerted, already, quiet = messages
    assert alerted is not None and alerted.startswith(
        f"alerted: run {result.run_id} (2026-03-30) failed: "
    ), alerted
    assert "cannot connect to the reminders database" in alerted
    assert already == (
        f"already alerted: run {zombie} (2026-03-29) was failed by zombie_run_sensor"
    )
    assert quiet == "no failed run of reminders_job or delivery_job since the last tick"
    assert [a["facts"]["run id"] for a in alerts_of(webhook, "run_failed")] == [result.run_id]


def test_sensor_descriptions_say_what_they_watch_the_threshold_and_where_alerts_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # delivery_after_run_sensor launches a job; it does not alert.
    descriptions = {
        s.name: s.description or ""
        for s in sensors.all_sensors
        if s.name != "delivery_after_run_sensor"
    }
    assert len(descriptions) == 6
    for name, text in descriptions.items():
        assert text.startswith("Watches "), name
        assert "Alerts go to the sensor's log" in text, name
    assert f"{settings.LONG_RUN_MINUTES.get()} min" in descriptions["long_running_reminders_sensor"]
    assert f"{settings.SKIP_ALERT_AFTER.get()} or more" in descriptions["repeated_skips_sensor"]
    assert f"{settings.STALE_LOCK_GRACE_S.get()} s grace" in descriptions["stale_lock_sensor"]
    assert f"{settings.ZOMBIE_GRACE_S.get()} s" in descriptions["zombie_run_sensor"]
    assert "older than 360 min" in descriptions["delivery_health_sensor"]

    for name in ("SLACK_WEBHOOK_URL", "WEBHOOK_URL", "SMTP_HOST", "EMAIL_TO"):
        monkeypatch.delenv(f"REMINDERS_ALERT_{name}", raising=False)
    assert "log only (no REMINDERS_ALERT_* destination set)" in alert_destinations()
    monkeypatch.setenv("REMINDERS_ALERT_WEBHOOK_URL", "https://secret.example/hook?token=s3cr3t")
    monkeypatch.setenv("REMINDERS_ALERT_SMTP_HOST", "smtp.example")
    monkeypatch.setenv("REMINDERS_ALERT_EMAIL_TO", "ops@example.org")
    where = alert_destinations()
    assert "the JSON webhook (REMINDERS_ALERT_WEBHOOK_URL)" in where
    assert "email to ops@example.org" in where
    assert "s3cr3t" not in where
