"""repeated_skips_sensor over the fake reads: one alert per streak, and what each tick says."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from reminders_pipeline.orchestration.sensors import repeated_skips_sensor
from tests.helpers.sensor_fakes import FakeReads, SentAlerts, tick


@pytest.fixture(autouse=True)
def two_in_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_SKIP_ALERT_AFTER", "2")


def evaluate(instance, reads, alerts, cursor=None):
    return tick(repeated_skips_sensor, instance, reads, alerts, cursor)


def skip(reads: FakeReads, minutes_ago: float, **blocked: object) -> int:
    return reads.add_run("skipped", minutes_ago=minutes_ago, error="Skipped: lock held", **blocked)


def test_no_runs_is_no_streak(instance: DagsterInstance, reads: FakeReads, alerts: SentAlerts):
    message, cursor = evaluate(instance, reads, alerts)
    assert message == "no streak of 2 skipped runs"
    assert cursor == ""
    assert alerts.sent == []


def test_one_skip_is_not_a_streak(instance, reads, alerts):
    reads.add_run("success", minutes_ago=10)
    skip(reads, 5)
    message, _ = evaluate(instance, reads, alerts)
    assert message == "no streak of 2 skipped runs"
    assert alerts.sent == []


def test_two_skips_in_a_row_alert_once_with_the_count(instance, reads, alerts):
    reads.add_run("success", minutes_ago=10)
    first = skip(reads, 5)
    skip(reads, 1)
    message, cursor = evaluate(instance, reads, alerts)
    assert message == "alerted: 2 skipped runs in a row"
    assert cursor == str(first), "the streak is known by its first row"
    [alert] = alerts.sent
    assert alert.kind == "repeated_skips"
    assert alert.facts["skipped in a row"] == "2"
    assert alert.facts["last reason"] == "Skipped: lock held"


def test_the_tick_after_the_alert_says_the_streak_still_holds(instance, reads, alerts):
    first = skip(reads, 5)
    latest = skip(reads, 1)
    _, cursor = evaluate(instance, reads, alerts)
    message, again = evaluate(instance, reads, alerts, cursor)
    assert message.startswith("already alerted: 2 skipped runs in a row since "), message
    assert message.endswith(f"(latest: reminder_runs {latest})")
    assert again == cursor == str(first)
    assert len(alerts.sent) == 1


def test_a_longer_streak_does_not_alert_again_but_counts(instance, reads, alerts):
    skip(reads, 5)
    skip(reads, 4)
    _, cursor = evaluate(instance, reads, alerts)
    skip(reads, 1)
    message, _ = evaluate(instance, reads, alerts, cursor)
    assert message.startswith("already alerted: 3 skipped runs in a row"), message
    assert len(alerts.sent) == 1


def test_a_run_that_is_not_skipped_breaks_the_streak_and_clears_the_cursor(instance, reads, alerts):
    skip(reads, 5)
    skip(reads, 4)
    _, cursor = evaluate(instance, reads, alerts)
    reads.add_run("success", minutes_ago=1)
    message, cursor = evaluate(instance, reads, alerts, cursor)
    assert message == "no streak of 2 skipped runs"
    assert cursor == ""


def test_a_new_streak_after_a_break_alerts_again(instance, reads, alerts):
    skip(reads, 9)
    skip(reads, 8)
    _, cursor = evaluate(instance, reads, alerts)
    reads.add_run("success", minutes_ago=7)
    _, cursor = evaluate(instance, reads, alerts, cursor)
    skip(reads, 2)
    skip(reads, 1)
    message, _ = evaluate(instance, reads, alerts, cursor)
    assert message == "alerted: 2 skipped runs in a row"
    assert len(alerts.sent) == 2


def test_the_alert_names_who_holds_the_lock_now(instance, reads, alerts):
    skip(reads, 5)
    skip(reads, 1)
    pid = reads.hold_lock("r-stuck")
    evaluate(instance, reads, alerts)
    [alert] = alerts.sent
    assert alert.facts["pid"] == str(pid)
    assert "run r-stuck" in alert.facts["lock holder now"]


def test_with_the_lock_free_the_alert_says_nobody_holds_it(instance, reads, alerts):
    skip(reads, 5)
    skip(reads, 1)
    evaluate(instance, reads, alerts)
    [alert] = alerts.sent
    assert alert.facts["lock holder now"] == "nobody"
    assert "pid" not in alert.facts


@pytest.mark.parametrize(
    ("blocked", "recorded"),
    [
        ({"blocked_by_pid": 77, "blocked_by_run_id": "r-x"}, "pid 77, run r-x"),
        ({"blocked_by_pid": 77}, "pid 77, run ?"),
        ({"blocked_by_run_id": "r-queue"}, "run r-queue"),
        ({}, None),
    ],
)
def test_the_alert_names_what_the_last_skip_recorded_as_blocking_it(
    instance, reads, alerts, blocked, recorded
):
    skip(reads, 5)
    skip(reads, 1, **blocked)
    evaluate(instance, reads, alerts)
    [alert] = alerts.sent
    assert alert.facts.get("blocked by (last skip)") == recorded


def test_the_threshold_is_read_at_each_evaluation(
    instance, reads, alerts, monkeypatch: pytest.MonkeyPatch
):
    skip(reads, 5)
    skip(reads, 1)
    monkeypatch.setenv("REMINDERS_SKIP_ALERT_AFTER", "3")
    message, _ = evaluate(instance, reads, alerts)
    assert message == "no streak of 3 skipped runs"
    skip(reads, 0)
    message, _ = evaluate(instance, reads, alerts)
    assert message == "alerted: 3 skipped runs in a row"


def test_a_log_that_cannot_be_read_is_reported_and_the_cursor_kept(instance, reads, alerts):
    reads.down = ConnectionError("server closed the connection")
    message, cursor = evaluate(instance, reads, alerts, "17")
    assert message == (
        "no streak of 2 skipped runs | reading reminder_runs failed:"
        " ConnectionError: server closed the connection"
    )
    assert cursor == "17"
    assert alerts.sent == []


def test_a_lock_holder_that_cannot_be_read_still_alerts_and_says_so(instance, reads, alerts):
    skip(reads, 5)
    skip(reads, 1)

    class LockUnreadable(FakeReads):
        def lock_holder(self):
            raise TimeoutError("pg_locks timed out")

    unreadable = LockUnreadable(runs=reads.runs)
    message, _ = evaluate(instance, unreadable, alerts)
    assert message == (
        "alerted: 2 skipped runs in a row | reading the lock holder failed:"
        " TimeoutError: pg_locks timed out"
    )
    assert alerts.sent[0].facts["lock holder now"] == "nobody"


def test_a_streak_longer_than_the_rows_read_says_or_more(instance, reads, alerts):
    for minutes in range(60, 0, -1):
        skip(reads, minutes)
    _, cursor = evaluate(instance, reads, alerts)
    message, _ = evaluate(instance, reads, alerts, cursor)
    assert message.startswith("already alerted: 50 or more skipped runs in a row"), message


def test_a_streak_longer_than_the_rows_read_alerts_once_while_it_grows(instance, reads, alerts):
    for minutes in range(60, 0, -1):
        skip(reads, minutes)
    _, cursor = evaluate(instance, reads, alerts)
    skip(reads, 0)
    message, again = evaluate(instance, reads, alerts, cursor)
    assert message.startswith("already alerted: 50 or more skipped runs in a row"), message
    assert again == cursor, "the streak is still known by the row alerted on"
    assert len(alerts.sent) == 1
