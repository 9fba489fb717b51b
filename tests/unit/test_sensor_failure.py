"""reminders_run_failure_sensor and delivery_after_run_sensor over an in-memory instance."""

from __future__ import annotations

import json

import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    SkipReason,
)

from reminders_pipeline.orchestration.ops import CREATED_TAG, OUTCOME_TAG
from reminders_pipeline.orchestration.sensors import reminders_run_failure_sensor
from reminders_pipeline.orchestration.sensors.common import ZOMBIE_TAG
from tests.helpers.dagster_runs import after_run_sensor, job_run
from tests.helpers.sensor_fakes import FakeReads, SentAlerts, tick

QUIET = "no failed run of reminders_job or delivery_job since the last tick"


def evaluate(instance, alerts, cursor=None):
    return tick(reminders_run_failure_sensor, instance, FakeReads(), alerts, cursor)


def started(instance: DagsterInstance, alerts: SentAlerts) -> str | None:
    """The first tick: it only places the cursor."""
    message, cursor = evaluate(instance, alerts)
    assert message == "started: failed runs from now on are alerted"
    return cursor


def test_failures_from_before_the_first_tick_are_old_news(instance, alerts):
    job_run(instance, DagsterRunStatus.FAILURE)
    cursor = started(instance, alerts)
    message, _ = evaluate(instance, alerts, cursor)
    assert message == QUIET
    assert alerts.sent == []


def test_a_failed_run_alerts_once_with_a_link_and_the_next_step(instance, alerts):
    cursor = started(instance, alerts)
    run_id = job_run(instance, DagsterRunStatus.FAILURE)
    message, cursor = evaluate(instance, alerts, cursor)
    assert message == f"alerted: run {run_id} (2026-03-29) failed: the run failed"
    [alert] = alerts.sent
    assert alert.kind == "run_failed"
    assert alert.facts["partition"] == "2026-03-29"
    assert "reminders backfill --from 2026-03-29 --to 2026-03-29" in alert.facts["next step"]
    assert alert.link == f"http://dagster.test/runs/{run_id}"
    again, _ = evaluate(instance, alerts, cursor)
    assert again == QUIET
    assert len(alerts.sent) == 1


def test_one_failed_run_per_tick_in_the_order_they_failed(instance, alerts):
    cursor = started(instance, alerts)
    first = job_run(instance, DagsterRunStatus.FAILURE)
    second = job_run(instance, DagsterRunStatus.FAILURE)
    messages = []
    for _ in range(3):
        message, cursor = evaluate(instance, alerts, cursor)
        messages.append(message)
    assert [m.split(" (")[0] for m in messages[:2]] == [
        f"alerted: run {first}",
        f"alerted: run {second}",
    ]
    assert messages[2] == QUIET


def test_a_run_failed_as_a_zombie_is_already_alerted(instance, alerts):
    cursor = started(instance, alerts)
    run_id = job_run(instance, DagsterRunStatus.FAILURE, **{ZOMBIE_TAG: "true"})
    message, _ = evaluate(instance, alerts, cursor)
    assert message == f"already alerted: run {run_id} (2026-03-29) was failed by zombie_run_sensor"
    assert alerts.sent == []


def test_a_crashed_run_says_how_its_process_ended(instance, alerts):
    cursor = started(instance, alerts)
    run_id = job_run(instance, DagsterRunStatus.STARTED)
    run = instance.get_run_by_id(run_id)
    instance.report_engine_event(
        f"Run execution process for {run_id} was terminated by signal 9 (SIGKILL).", run
    )
    instance.report_run_failed(run, "The run worker died.")
    message, _ = evaluate(instance, alerts, cursor)
    assert message.endswith(
        "failed: The run worker died. Run execution process for"
        f" {run_id} was terminated by signal 9 (SIGKILL)."
    )
    assert "signal 9" in alerts.sent[0].text


def test_a_delivery_run_failure_says_the_waiting_deliveries_go_out_next_time(instance, alerts):
    cursor = started(instance, alerts)
    job_run(instance, DagsterRunStatus.FAILURE, job_name="delivery_job")
    evaluate(instance, alerts, cursor)
    [alert] = alerts.sent
    assert alert.facts["job"] == "delivery_job"
    assert "next delivery_job run" in alert.facts["next step"]


def test_runs_of_other_jobs_are_passed_over(instance, alerts):
    cursor = started(instance, alerts)
    job_run(instance, DagsterRunStatus.FAILURE, job_name="someone_elses_job")
    message, cursor = evaluate(instance, alerts, cursor)
    assert message == QUIET
    assert json.loads(cursor)["record_id"] > -1, "the cursor moves past them"
    assert alerts.sent == []


def test_a_cursor_of_dagsters_run_status_sensor_carries_on(instance, alerts):
    job_run(instance, DagsterRunStatus.FAILURE)
    cursor = started(instance, alerts)
    record_id = json.loads(cursor)["record_id"]
    legacy = json.dumps(
        {"__class__": "RunStatusSensorCursor", "record_id": record_id, "update_timestamp": None}
    )
    run_id = job_run(instance, DagsterRunStatus.FAILURE)
    message, _ = evaluate(instance, alerts, legacy)
    assert message.startswith(f"alerted: run {run_id} "), message


def _after_run(instance: DagsterInstance, **tags: str) -> tuple[str, RunRequest | SkipReason]:
    run_id = job_run(instance, DagsterRunStatus.SUCCESS, **tags)
    return run_id, after_run_sensor(instance, run_id)


def test_a_run_that_created_reminders_launches_the_delivery_job(instance):
    run_id, result = _after_run(instance, **{OUTCOME_TAG: "success", CREATED_TAG: "3"})
    assert isinstance(result, RunRequest)
    assert result.run_key == f"after-{run_id}"
    assert result.tags == {"reminders/after_run": run_id}


@pytest.mark.parametrize(
    ("tags", "says"),
    [
        ({OUTCOME_TAG: "skipped"}, "was skipped: nothing to deliver"),
        ({}, "was not recorded: nothing to deliver"),
        ({OUTCOME_TAG: "success", CREATED_TAG: "0"}, "created no reminders"),
    ],
)
def test_a_run_with_nothing_new_launches_nothing(instance, tags, says):
    run_id, result = _after_run(instance, **tags)
    assert isinstance(result, SkipReason)
    assert result.skip_message.startswith(f"run {run_id} ")
    assert says in result.skip_message
