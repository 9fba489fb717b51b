"""long_running_reminders_sensor over the fake reads: Dagster runs and 'running' rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from reminders_pipeline.orchestration.sensors import long_running_reminders_sensor
from tests.helpers.dagster_runs import job_run, report
from tests.helpers.sensor_fakes import tick

QUIET = "no run over 30 min"


@pytest.fixture(autouse=True)
def thirty_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_LONG_RUN_MINUTES", "30")
    monkeypatch.delenv("REMINDERS_LONG_RUN_S", raising=False)


def evaluate(instance, reads, alerts, cursor=None):
    return tick(long_running_reminders_sensor, instance, reads, alerts, cursor)


def started(instance: DagsterInstance, minutes_ago: float, **kwargs: str) -> str:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return job_run(instance, DagsterRunStatus.STARTED, started_at=at, **kwargs)


def test_nothing_running_is_quiet(instance, reads, alerts):
    message, cursor = evaluate(instance, reads, alerts)
    assert message == QUIET
    assert json.loads(cursor) == {"runs": [], "rows": []}


def test_a_run_under_the_threshold_does_not_alert(instance, reads, alerts):
    started(instance, 10)
    message, _ = evaluate(instance, reads, alerts)
    assert message == QUIET
    assert alerts.sent == []


def test_a_dagster_run_over_the_threshold_alerts_once_with_a_link(instance, reads, alerts):
    run_id = started(instance, 45)
    message, cursor = evaluate(instance, reads, alerts)
    assert message == f"alerted: run {run_id} long-running"
    assert json.loads(cursor)["runs"] == [run_id]
    [alert] = alerts.sent
    assert alert.facts["elapsed"] == "45 min"
    assert alert.facts["threshold"] == "30 min"
    assert alert.facts["seen in"] == "Dagster (reminders_job)"
    assert alert.link == f"http://dagster.test/runs/{run_id}"


def test_the_tick_after_the_alert_says_how_long_it_has_been_running(instance, reads, alerts):
    run_id = started(instance, 45)
    _, cursor = evaluate(instance, reads, alerts)
    message, _ = evaluate(instance, reads, alerts, cursor)
    assert message == f"already alerted: run {run_id} in progress for 45 min"
    assert len(alerts.sent) == 1


def test_a_finished_run_leaves_the_cursor(instance, reads, alerts):
    run_id = started(instance, 45)
    _, cursor = evaluate(instance, reads, alerts)
    report(instance, run_id, DagsterRunStatus.SUCCESS)
    message, cursor = evaluate(instance, reads, alerts, cursor)
    assert message == QUIET
    assert json.loads(cursor)["runs"] == []


def test_queued_and_finished_runs_are_not_running(instance, reads, alerts):
    job_run(instance, DagsterRunStatus.QUEUED)
    job_run(instance, DagsterRunStatus.SUCCESS, started_at=datetime.now(UTC) - timedelta(hours=3))
    message, _ = evaluate(instance, reads, alerts)
    assert message == QUIET


@pytest.mark.parametrize(("holder_is_the_run", "says"), [(True, "yes"), (False, "no")])
def test_the_alert_says_whether_the_run_holds_the_lock(
    instance, reads, alerts, holder_is_the_run, says
):
    run_id = started(instance, 45)
    reads.hold_lock(run_id if holder_is_the_run else "someone-else")
    evaluate(instance, reads, alerts)
    [alert] = alerts.sent
    assert alert.facts["holds the run lock"] == says


def test_a_delivery_run_never_holds_the_lock_so_the_alert_does_not_say(instance, reads, alerts):
    run_id = started(instance, 120, job_name="delivery_job")
    evaluate(instance, reads, alerts)
    [alert] = alerts.sent
    assert alert.facts["run id"] == run_id
    assert alert.facts["seen in"] == "Dagster (delivery_job)"
    assert "holds the run lock" not in alert.facts


def test_an_unreadable_lock_leaves_the_lock_unsaid_and_is_reported(instance, reads, alerts):
    started(instance, 45)
    reads.down = OSError("no route to host")
    message, _ = evaluate(instance, reads, alerts)
    assert "| reading the lock holder failed: OSError: no route to host" in message
    assert "| reading running rows of reminder_runs failed: OSError" in message
    [alert] = alerts.sent
    assert "holds the run lock" not in alert.facts


def test_a_running_row_outside_dagster_alerts_once(instance, reads, alerts):
    row = reads.add_run("running", minutes_ago=40, dagster_run_id="cli-run-1", trigger="cli")
    message, cursor = evaluate(instance, reads, alerts)
    assert message == f"alerted: reminder_runs {row} long-running"
    [alert] = alerts.sent
    assert alert.facts["reminder_runs id"] == str(row)
    assert alert.facts["seen in"] == "reminder_runs (trigger cli, outside this Dagster instance)"
    again, _ = evaluate(instance, reads, alerts, cursor)
    assert again == f"already alerted: reminder_runs {row} 'running' for 40 min"
    assert len(alerts.sent) == 1


def test_a_running_row_of_a_run_dagster_shows_running_is_covered_by_its_run(
    instance, reads, alerts
):
    run_id = started(instance, 45)
    reads.add_run("running", minutes_ago=45, dagster_run_id=run_id)
    message, _ = evaluate(instance, reads, alerts)
    assert message == f"alerted: run {run_id} long-running"
    assert len(alerts.sent) == 1


def test_a_running_row_of_a_failed_dagster_run_says_the_process_died(instance, reads, alerts):
    dead = job_run(
        instance, DagsterRunStatus.FAILURE, started_at=datetime.now(UTC) - timedelta(minutes=50)
    )
    reads.add_run("running", minutes_ago=50, dagster_run_id=dead)
    evaluate(instance, reads, alerts)
    [alert] = alerts.sent
    assert "left 'running' although its Dagster run is FAILURE" in alert.facts["seen in"]


def test_a_running_row_says_whether_its_session_holds_the_lock(instance, reads, alerts):
    pid = reads.hold_lock("cli-run-2")
    reads.add_run("running", minutes_ago=40, dagster_run_id="cli-run-2", lock_backend_pid=pid)
    reads.add_run("running", minutes_ago=40, dagster_run_id="cli-run-3", lock_backend_pid=1)
    evaluate(instance, reads, alerts)
    assert [a.facts["holds the run lock"] for a in alerts.sent] == ["yes", "no"]


def test_young_running_rows_do_not_alert(instance, reads, alerts):
    reads.add_run("running", minutes_ago=10, dagster_run_id="cli-run-4")
    reads.add_run("success", minutes_ago=90, dagster_run_id="cli-run-5")
    message, _ = evaluate(instance, reads, alerts)
    assert message == QUIET


def test_a_row_no_longer_running_leaves_the_cursor(instance, reads, alerts):
    row = reads.add_run("running", minutes_ago=40)
    _, cursor = evaluate(instance, reads, alerts)
    assert json.loads(cursor)["rows"] == [row]
    reads.runs[0]["status"] = "abandoned"
    _, cursor = evaluate(instance, reads, alerts, cursor)
    assert json.loads(cursor)["rows"] == []


def test_an_unreadable_log_keeps_the_rows_already_alerted(instance, reads, alerts):
    row = reads.add_run("running", minutes_ago=40)
    _, cursor = evaluate(instance, reads, alerts)
    reads.down = OSError("gone")
    _, cursor = evaluate(instance, reads, alerts, cursor)
    assert json.loads(cursor)["rows"] == [row], "a failed read must not re-alert later"


def test_seconds_win_over_minutes(instance, reads, alerts, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REMINDERS_LONG_RUN_S", "60")
    run_id = started(instance, 2)
    message, _ = evaluate(instance, reads, alerts)
    assert message == f"alerted: run {run_id} long-running"
    assert alerts.sent[0].facts["threshold"] == "1 min"
