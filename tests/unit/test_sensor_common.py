"""What every alerting sensor shares: cursors, tick summaries, reads that fail, descriptions."""

from __future__ import annotations

import logging

import pytest

from reminders_pipeline import settings
from reminders_pipeline.orchestration import sensors
from reminders_pipeline.orchestration.sensors.common import (
    alert_destinations,
    attempt,
    load_cursor,
    summary,
)
from tests.helpers.sensor_fakes import FakeReads, tick


@pytest.mark.parametrize(
    ("cursor", "state"),
    [
        (None, {}),
        ("", {}),
        ("not json", {}),
        ("[1, 2]", {}),
        ('"text"', {}),
        ('{"runs": ["a"]}', {"runs": ["a"]}),
    ],
)
def test_a_cursor_is_a_dict_whatever_was_stored(cursor: str | None, state: dict) -> None:
    assert load_cursor(cursor) == state


@pytest.mark.parametrize(
    ("fired", "problems", "still", "reason"),
    [
        ([], [], [], "all clear"),
        (["a"], [], [], "alerted: a"),
        (["a", "b"], [], ["c"], "alerted: a; b"),
        ([], [], ["c", "d"], "already alerted: c; d"),
        ([], ["x failed: E: e"], [], "all clear | x failed: E: e"),
        (["a"], ["x failed", "y failed"], [], "alerted: a | x failed | y failed"),
    ],
)
def test_a_tick_says_what_fired_what_still_holds_and_what_failed(
    fired: list[str], problems: list[str], still: list[str], reason: str
) -> None:
    assert summary(fired, problems, "all clear", still).skip_message == reason


def test_a_read_that_fails_is_logged_reported_and_answers_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    problems: list[str] = []

    def fails() -> int:
        raise ValueError("bad row")

    with caplog.at_level(logging.ERROR):
        assert attempt("reading things", fails, problems) is None
    assert problems == ["reading things failed: ValueError: bad row"]
    assert "reading things failed" in caplog.text
    assert attempt("reading more", lambda: 3, problems) == 3
    assert len(problems) == 1


@pytest.mark.parametrize(
    ("sensor", "quiet"),
    [
        (sensors.long_running_reminders_sensor, "no run over "),
        (sensors.repeated_skips_sensor, "no streak of "),
        (sensors.stale_lock_sensor, "the run lock is free or held by a run in progress"),
        (sensors.delivery_health_sensor, "no new dead delivery, no old pending one"),
    ],
)
def test_a_database_that_is_down_is_reported_and_fails_no_sensor(
    instance, alerts, sensor, quiet: str
) -> None:
    down = FakeReads(down=ConnectionRefusedError("127.0.0.1:5432"))
    message, _ = tick(sensor, instance, down, alerts)
    assert message.startswith(quiet), message
    assert "failed: ConnectionRefusedError: 127.0.0.1:5432" in message
    assert alerts.sent == []


def test_every_alerting_sensor_says_what_it_watches_and_where_alerts_go() -> None:
    alerting = [s for s in sensors.all_sensors if s.name != "delivery_after_run_sensor"]
    assert len(alerting) == 6
    for sensor in alerting:
        assert (sensor.description or "").startswith("Watches "), sensor.name
        assert "Alerts go to the sensor's log" in (sensor.description or ""), sensor.name


def test_alert_destinations_name_the_settings_never_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SLACK_WEBHOOK_URL", "WEBHOOK_URL", "SMTP_HOST", "EMAIL_TO"):
        monkeypatch.delenv(f"REMINDERS_ALERT_{name}", raising=False)
    assert alert_destinations() == (
        "Alerts go to the sensor's log only (no REMINDERS_ALERT_* destination set)."
    )
    monkeypatch.setenv("REMINDERS_ALERT_SLACK_WEBHOOK_URL", "https://hooks.example/T0/s3cr3t")
    monkeypatch.setenv("REMINDERS_ALERT_SMTP_HOST", "smtp.example")
    monkeypatch.setenv("REMINDERS_ALERT_EMAIL_TO", "ops@example.org,oncall@example.org")
    where = alert_destinations()
    assert f"the Slack webhook ({settings.ALERT_SLACK_WEBHOOK_URL.name})" in where
    assert "email to ops@example.org, oncall@example.org" in where
    assert "s3cr3t" not in where


def test_email_without_recipients_is_no_destination(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_WEBHOOK_URL", "WEBHOOK_URL", "EMAIL_TO"):
        monkeypatch.delenv(f"REMINDERS_ALERT_{name}", raising=False)
    monkeypatch.setenv("REMINDERS_ALERT_SMTP_HOST", "smtp.example")
    assert "only (no REMINDERS_ALERT_* destination set)" in alert_destinations()
