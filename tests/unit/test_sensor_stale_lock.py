"""stale_lock_sensor over the fake reads: which holders are stale, once per session."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from reminders_pipeline.orchestration.sensors import stale_lock_sensor
from tests.helpers.dagster_runs import job_run
from tests.helpers.sensor_fakes import FakeReads, SentAlerts, tick

QUIET = "the run lock is free or held by a run in progress"


@pytest.fixture(autouse=True)
def one_minute_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_STALE_LOCK_GRACE_S", "60")


def evaluate(instance, reads, alerts, cursor=None):
    return tick(stale_lock_sensor, instance, reads, alerts, cursor)


def test_a_free_lock_is_quiet_and_clears_the_cursor(instance, reads, alerts):
    message, cursor = evaluate(instance, reads, alerts, "4242@2026-03-30T00:00:00")
    assert (message, cursor) == (QUIET, "")
    assert alerts.sent == []


@pytest.mark.parametrize(
    "status", [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
)
def test_a_lock_held_for_a_finished_run_alerts_with_the_pid(
    instance: DagsterInstance,
    reads: FakeReads,
    alerts: SentAlerts,
    status: DagsterRunStatus,
):
    run_id = job_run(instance, status)
    pid = reads.hold_lock(run_id, idle_minutes=5)
    message, cursor = evaluate(instance, reads, alerts)
    assert message == f"alerted: stale lock held by pid {pid} (its Dagster run is {status.value})"
    assert cursor is not None and cursor.startswith(f"{pid}@")
    [alert] = alerts.sent
    assert alert.kind == "stale_lock"
    assert alert.facts["why stale"] == f"its Dagster run is {status.value}"
    assert alert.facts["to free it"] == f"SELECT pg_terminate_backend({pid});"
    assert alert.link == f"http://dagster.test/runs/{run_id}"


def test_the_same_session_alerts_once_and_later_ticks_say_it_is_still_held(instance, reads, alerts):
    run_id = job_run(instance, DagsterRunStatus.FAILURE)
    pid = reads.hold_lock(run_id, idle_minutes=5)
    _, cursor = evaluate(instance, reads, alerts)
    message, again = evaluate(instance, reads, alerts, cursor)
    assert message.startswith(f"already alerted: stale lock held by pid {pid}, run {run_id}")
    assert again == cursor
    assert len(alerts.sent) == 1


def test_a_new_session_holding_it_alerts_again(instance, reads, alerts):
    run_id = job_run(instance, DagsterRunStatus.FAILURE)
    reads.hold_lock(run_id, idle_minutes=5)
    _, cursor = evaluate(instance, reads, alerts)
    other = job_run(instance, DagsterRunStatus.SUCCESS)
    pid = reads.hold_lock(other, idle_minutes=3)
    message, _ = evaluate(instance, reads, alerts, cursor)
    assert message.startswith(f"alerted: stale lock held by pid {pid}")
    assert len(alerts.sent) == 2


@pytest.mark.parametrize("status", [DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING])
def test_a_lock_held_by_a_run_in_progress_is_not_stale(instance, reads, alerts, status):
    run_id = job_run(instance, status)
    reads.hold_lock(run_id, idle_minutes=90)
    message, _ = evaluate(instance, reads, alerts)
    assert message == QUIET
    assert alerts.sent == []


def test_a_just_taken_lock_gets_the_grace_period(instance, reads, alerts):
    run_id = job_run(instance, DagsterRunStatus.FAILURE)
    reads.hold_lock(run_id, idle_minutes=0.5)
    message, _ = evaluate(instance, reads, alerts)
    assert message == QUIET


def test_with_no_grace_a_just_taken_lock_is_judged_at_once(
    instance, reads, alerts, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("REMINDERS_STALE_LOCK_GRACE_S", "0")
    run_id = job_run(instance, DagsterRunStatus.FAILURE)
    reads.hold_lock(run_id)
    message, _ = evaluate(instance, reads, alerts)
    assert message.startswith("alerted: stale lock held by pid ")


def test_a_run_unknown_to_dagster_without_a_record_is_stale(instance, reads, alerts):
    reads.hold_lock("gone-run-42", idle_minutes=5)
    evaluate(instance, reads, alerts)
    [alert] = alerts.sent
    assert alert.facts["why stale"] == "run gone-run-42 is unknown to Dagster (no run record)"


def test_a_run_unknown_to_dagster_whose_row_ended_is_stale(instance, reads, alerts):
    reads.add_run("failed", minutes_ago=20, dagster_run_id="cli-7")
    reads.hold_lock("cli-7", idle_minutes=5)
    evaluate(instance, reads, alerts)
    [alert] = alerts.sent
    assert alert.facts["why stale"] == (
        "run cli-7 is unknown to Dagster (its run is failed in reminder_runs)"
    )


def test_a_run_of_another_dagster_instance_with_a_running_row_is_not_stale(instance, reads, alerts):
    pid = reads.hold_lock("cli-elsewhere", idle_minutes=30)
    reads.add_run("running", minutes_ago=30, dagster_run_id="cli-elsewhere", lock_backend_pid=pid)
    message, _ = evaluate(instance, reads, alerts)
    assert message == QUIET


def test_a_reminders_session_without_a_run_id_and_its_running_row_is_not_stale(
    instance, reads, alerts
):
    pid = reads.hold_lock(None, idle_minutes=30)
    reads.add_run("running", minutes_ago=30, lock_backend_pid=pid)
    message, _ = evaluate(instance, reads, alerts)
    assert message == QUIET


def test_a_reminders_session_without_a_run_id_nor_a_running_row_is_stale(instance, reads, alerts):
    reads.add_run("running", minutes_ago=30, lock_backend_pid=1)  # another session's row
    reads.hold_lock(None, idle_minutes=30)
    evaluate(instance, reads, alerts)
    [alert] = alerts.sent
    assert alert.facts["why stale"] == (
        "a reminders session without a run id and without a 'running' row"
    )


def test_a_session_that_is_not_a_reminders_run_is_stale(instance, reads, alerts):
    reads.hold_lock("x", idle_minutes=5)
    reads.holder = reads.holder.__class__(
        pid=reads.holder.pid,
        application_name="psql",
        since=reads.holder.since,
        client_addr="10.0.0.5",
        run_id=None,
        state_change=reads.holder.state_change,
    )
    evaluate(instance, reads, alerts)
    [alert] = alerts.sent
    assert alert.facts["why stale"] == "not a reminders run at all (application_name 'psql')"
    assert alert.facts["client"] == "10.0.0.5"
    assert alert.link is None


def test_a_one_call_run_left_idle_in_transaction_is_stale(instance, reads, alerts):
    pid = reads.hold_lock_in_one_call("idle in transaction", idle_minutes=5)
    message, _ = evaluate(instance, reads, alerts)
    why = "a one-call run (reminders_run_day()) whose transaction is left open, idle in transaction"
    assert message == f"alerted: stale lock held by pid {pid} ({why})"
    [alert] = alerts.sent
    assert alert.facts["why stale"] == why
    assert alert.link is None


def test_a_one_call_run_just_left_idle_in_transaction_gets_the_grace(instance, reads, alerts):
    reads.hold_lock_in_one_call("idle in transaction", idle_minutes=0.5)
    message, _ = evaluate(instance, reads, alerts)
    assert message == QUIET


@pytest.mark.parametrize("state", ["active", None])
def test_a_one_call_run_at_work_or_unseen_is_not_stale_however_long(instance, reads, alerts, state):
    """None: the sensor's login may not see another login's state (a pg_cron tick's)."""
    reads.hold_lock_in_one_call(state, idle_minutes=90)
    message, _ = evaluate(instance, reads, alerts)
    assert message == QUIET
    assert alerts.sent == []


def test_a_session_lock_held_under_the_one_call_name_is_stale(instance, reads, alerts):
    """An idle session holds a session-level lock: never a one-call run's."""
    reads.hold_lock_in_one_call("idle", idle_minutes=5)
    evaluate(instance, reads, alerts)
    [alert] = alerts.sent
    assert alert.facts["why stale"] == (
        "not a reminders run at all (application_name 'reminders-run-day')"
    )


def test_a_holder_that_lets_go_while_being_judged_does_not_alert(instance, reads, alerts):
    run_id = job_run(instance, DagsterRunStatus.FAILURE)
    reads.hold_lock(run_id, idle_minutes=5)

    class LetsGo(FakeReads):
        looks = 0

        def lock_holder(self):
            self.looks += 1
            return super().lock_holder() if self.looks == 1 else None

    message, _ = evaluate(instance, LetsGo(holder=reads.holder), alerts)
    assert message == QUIET
    assert alerts.sent == []


def test_a_lock_taken_over_while_being_judged_does_not_alert_on_the_new_session(
    instance, reads, alerts
):
    stale = job_run(instance, DagsterRunStatus.FAILURE)
    reads.hold_lock(stale, idle_minutes=5)
    first = reads.holder
    newcomer = FakeReads()
    newcomer.next_pid = reads.next_pid
    newcomer.hold_lock("r-next", idle_minutes=5)

    class TakenOver(FakeReads):
        looks = 0

        def lock_holder(self):
            self.looks += 1
            return first if self.looks == 1 else newcomer.holder

    message, cursor = evaluate(instance, TakenOver(), alerts)
    assert (message, cursor) == (QUIET, None)
    assert alerts.sent == []


def test_a_lock_that_cannot_be_read_is_reported_and_the_cursor_kept(instance, reads, alerts):
    reads.down = OSError("connection refused")
    message, cursor = evaluate(instance, reads, alerts, "4242@2026-03-30T00:00:00")
    assert message == f"{QUIET} | reading the lock holder failed: OSError: connection refused"
    assert cursor == "4242@2026-03-30T00:00:00"
