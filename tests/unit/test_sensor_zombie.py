"""zombie_run_sensor over the fake reads: a run without a session for the grace is failed once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from reminders_pipeline.orchestration.sensors import zombie_run_sensor
from reminders_pipeline.orchestration.sensors.common import ZOMBIE_TAG
from tests.helpers.dagster_runs import job_run, report
from tests.helpers.sensor_fakes import FakeReads, tick


@pytest.fixture(autouse=True)
def five_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_ZOMBIE_GRACE_S", "300")
    monkeypatch.setenv("REMINDERS_ZOMBIE_SENSOR", "on")


def evaluate(instance, reads, alerts, cursor=None):
    return tick(zombie_run_sensor, instance, reads, alerts, cursor)


def started(instance: DagsterInstance, minutes_ago: float) -> str:
    # The clock at the call, not at collection: a long run reaches this test minutes later.
    started_at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return job_run(instance, DagsterRunStatus.STARTED, started_at=started_at)


def missing_since(minutes_ago: float, *run_ids: str) -> str:
    at = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    return json.dumps({"missing": dict.fromkeys(run_ids, at)})


def status(instance: DagsterInstance, run_id: str) -> DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def test_no_run_in_progress_is_quiet_and_reads_nothing(instance, alerts):
    message, cursor = evaluate(instance, FakeReads(down=AssertionError("read")), alerts)
    assert message == "no zombie run"
    assert json.loads(cursor) == {"missing": {}}


def test_one_look_without_a_session_is_never_enough(instance, reads, alerts):
    run_id = started(instance, 30)
    message, cursor = evaluate(instance, reads, alerts)
    assert message == "no zombie run"
    assert set(json.loads(cursor)["missing"]) == {run_id}
    assert status(instance, run_id) == DagsterRunStatus.STARTED


def test_a_run_missing_for_the_grace_is_failed_tagged_and_alerted(instance, reads, alerts):
    run_id = started(instance, 30)
    message, cursor = evaluate(instance, reads, alerts, missing_since(6, run_id))
    assert message == f"alerted: run {run_id} had no session for 6 min: marked failed"
    assert json.loads(cursor) == {"missing": {}}
    run = instance.get_run_by_id(run_id)
    assert run.status == DagsterRunStatus.FAILURE
    assert run.tags[ZOMBIE_TAG] == "true", "the failure sensor must know it is alerted"
    [alert] = alerts.sent
    assert alert.kind == "zombie_run"
    assert alert.facts["run id"] == run_id
    assert alert.facts["status was"] == "STARTED"
    assert alert.facts["partition"] == "2026-03-29"
    assert alert.link == f"http://dagster.test/runs/{run_id}"


def test_a_failed_zombie_is_gone_from_the_next_tick(instance, reads, alerts):
    run_id = started(instance, 30)
    _, cursor = evaluate(instance, reads, alerts, missing_since(6, run_id))
    message, _ = evaluate(instance, reads, alerts, cursor)
    assert message == "no zombie run"
    assert len(alerts.sent) == 1


def test_a_run_missing_for_less_than_the_grace_waits(instance, reads, alerts):
    run_id = started(instance, 30)
    before = missing_since(4, run_id)
    message, cursor = evaluate(instance, reads, alerts, before)
    assert message == "no zombie run"
    assert json.loads(cursor) == json.loads(before), "the count goes on from the first look"
    assert status(instance, run_id) == DagsterRunStatus.STARTED


def test_a_run_started_less_than_the_grace_ago_waits(instance, reads, alerts):
    run_id = started(instance, 2)
    message, _ = evaluate(instance, reads, alerts, missing_since(6, run_id))
    assert message == "no zombie run"
    assert status(instance, run_id) == DagsterRunStatus.STARTED


def test_a_run_with_a_session_is_alive_and_forgotten(instance, reads, alerts):
    run_id = started(instance, 30)
    reads.open_session(run_id)
    message, cursor = evaluate(instance, reads, alerts, missing_since(6, run_id))
    assert message == "no zombie run"
    assert json.loads(cursor) == {"missing": {}}, "a session seen starts the count again"


def test_a_run_holding_the_lock_is_alive(instance, reads, alerts):
    run_id = started(instance, 30)
    reads.hold_lock(run_id)
    message, _ = evaluate(instance, reads, alerts, missing_since(6, run_id))
    assert message == "no zombie run"


def test_only_the_dead_of_several_runs_is_failed(instance, reads, alerts):
    dead, alive = started(instance, 30), started(instance, 30)
    reads.open_session(alive)
    message, _ = evaluate(instance, reads, alerts, missing_since(6, dead, alive))
    assert message.startswith(f"alerted: run {dead} had no session")
    assert (status(instance, dead), status(instance, alive)) == (
        DagsterRunStatus.FAILURE,
        DagsterRunStatus.STARTED,
    )


def test_a_starting_run_counts_from_its_launch(instance, reads, alerts):
    run_id = job_run(instance, DagsterRunStatus.NOT_STARTED)
    report(instance, run_id, DagsterRunStatus.STARTING, datetime.now(UTC) - timedelta(minutes=20))
    message, _ = evaluate(instance, reads, alerts, missing_since(6, run_id))
    assert message.startswith(f"alerted: run {run_id} had no session")
    assert alerts.sent[0].facts["status was"] == "STARTING"


def test_sessions_that_cannot_be_read_give_no_verdict_and_keep_the_cursor(instance, reads, alerts):
    run_id = started(instance, 30)
    reads.down = OSError("connection refused")
    cursor = missing_since(6, run_id)
    message, kept = evaluate(instance, reads, alerts, cursor)
    assert message == (
        "no zombie run | reading the reminders sessions failed: OSError: connection refused"
    )
    assert kept == cursor
    assert status(instance, run_id) == DagsterRunStatus.STARTED


@pytest.mark.parametrize("cursor", ["not json", '{"missing": []}', '{"missing": {"r": "x"}}'])
def test_a_damaged_cursor_starts_the_count_again(instance, reads, alerts, cursor):
    run_id = started(instance, 30)
    message, new = evaluate(instance, reads, alerts, cursor)
    assert message == "no zombie run"
    assert set(json.loads(new)["missing"]) == {run_id}


def test_switched_off_it_does_nothing(instance, reads, alerts, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REMINDERS_ZOMBIE_SENSOR", "off")
    run_id = started(instance, 30)
    before = missing_since(60, run_id)
    message, cursor = evaluate(instance, reads, alerts, before)
    assert message == "off: REMINDERS_ZOMBIE_SENSOR=off"
    assert cursor == before
    assert status(instance, run_id) == DagsterRunStatus.STARTED
    assert alerts.sent == []


def test_a_delivery_run_is_not_watched(instance, reads, alerts):
    job_run(
        instance,
        DagsterRunStatus.STARTED,
        started_at=datetime.now(UTC) - timedelta(minutes=30),
        job_name="delivery_job",
    )
    message, cursor = evaluate(instance, reads, alerts)
    assert (message, json.loads(cursor)) == ("no zombie run", {"missing": {}})
