"""Alert delivery: what arrives at a real local webhook and SMTP server, and sinks that are down."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from reminders_pipeline.alerts.messages import Alert, long_run_alert, stale_lock_alert
from reminders_pipeline.alerts.sinks import SmtpSink, WebhookSink, deliver
from reminders_pipeline.db.lock_holder import LockHolder
from reminders_pipeline.orchestration.alert_resource import AlertResource, alert_resource_from_env
from tests.helpers.alert_servers import SmtpServer, WebhookServer
from tests.helpers.ports import free_port

ALERT = Alert(
    kind="run_failed",
    title="Reminders run failed (2026-03-30)",
    text="dispatch_reminders: LockLost: the run lock connection is gone",
    facts={"run id": "abc", "partition": "2026-03-30"},
    link="http://dagster.example/runs/abc",
)


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def fast(**config: object) -> AlertResource:
    return AlertResource(backoff_factor_s=0.01, timeout_s=2.0, **config)


def test_every_configured_sink_receives_the_alert(
    webhook: WebhookServer, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    alerts = fast(
        slack_webhook_url=webhook.url("/slack"),
        webhook_url=webhook.url("/json"),
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_sender="dagster@example.org",
        smtp_recipients=["ops@example.org", "oncall@example.org"],
    )
    with caplog.at_level(logging.WARNING):
        results = alerts.send(ALERT)

    assert results == {"log": True, "slack": True, "webhook": True, "email": True}
    by_path = {r.path: r.body for r in webhook.received}
    assert set(by_path) == {"/slack", "/json"}
    slack = by_path["/slack"]["text"]
    assert "Reminders run failed (2026-03-30)" in slack and "LockLost" in slack
    assert "<http://dagster.example/runs/abc|Open in Dagster>" in slack
    assert by_path["/json"] == {
        "source": "reminders_pipeline",
        "kind": "run_failed",
        "title": ALERT.title,
        "text": ALERT.text,
        "facts": {"run id": "abc", "partition": "2026-03-30"},
        "link": "http://dagster.example/runs/abc",
    }
    [(sender, recipients, message)] = smtp.messages
    assert sender == "dagster@example.org"
    assert recipients == ["ops@example.org", "oncall@example.org"]
    assert message["Subject"] == "[reminders] Reminders run failed (2026-03-30)"
    assert "http://dagster.example/runs/abc" in message.get_payload()
    assert "ALERT [run_failed]" in caplog.text


def test_a_sink_that_fails_twice_is_retried_until_delivered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with WebhookServer(fail_first=2) as webhook, caplog.at_level(logging.WARNING):
        results = fast(webhook_url=webhook.url()).send(ALERT)
    assert results["webhook"] is True
    assert webhook.attempts == 3
    assert len(webhook.received) == 1
    assert caplog.text.count("alert sink webhook failed") == 2


def test_a_sink_that_is_down_is_logged_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    closed_port = free_port()  # nothing listens here
    with WebhookServer(fail_always=True) as broken, caplog.at_level(logging.WARNING):
        results = fast(
            webhook_url=broken.url(),
            slack_webhook_url=f"http://127.0.0.1:{closed_port}/slack",
            smtp_host="127.0.0.1",
            smtp_port=closed_port,
            smtp_recipients=["ops@example.org"],
            max_tries=2,
        ).send(ALERT)
    assert results == {"log": True, "slack": False, "webhook": False, "email": False}
    assert broken.attempts == 2
    for sink in ("slack", "webhook", "email"):
        assert f"alert sink {sink} gave up on the run_failed alert" in caplog.text


def test_a_client_error_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    with WebhookServer(fail_always=True, fail_status=404) as webhook:
        results = fast(webhook_url=webhook.url()).send(ALERT)
    assert results["webhook"] is False
    assert webhook.attempts == 1


def test_smtp_sink_alone_delivers_to_each_recipient(smtp: SmtpServer) -> None:
    sink = SmtpSink(host="127.0.0.1", port=smtp.port, sender="a@b", recipients=["x@y"])
    assert deliver(ALERT, [sink]) == {"email": True}
    assert smtp.messages[0][1] == ["x@y"]


def test_only_the_log_sink_without_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "REMINDERS_ALERT_SLACK_WEBHOOK_URL",
        "REMINDERS_ALERT_WEBHOOK_URL",
        "REMINDERS_ALERT_SMTP_HOST",
        "REMINDERS_ALERT_EMAIL_TO",
    ):
        monkeypatch.delenv(name, raising=False)
    assert [s.name for s in alert_resource_from_env().sinks()] == ["log"]


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/json")
    monkeypatch.setenv("REMINDERS_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("REMINDERS_ALERT_EMAIL_TO", "a@example.org, b@example.org")
    monkeypatch.setenv("REMINDERS_DAGSTER_UI_URL", "https://dagster.example/")
    resource = alert_resource_from_env()
    assert resource.smtp_recipients == ["a@example.org", "b@example.org"]
    assert resource.run_url("r1") == "https://dagster.example/runs/r1"


def test_long_run_alert_flags_a_run_that_lost_its_lock() -> None:
    started = datetime(2026, 3, 30, 4, 0, tzinfo=UTC)
    alert = long_run_alert(
        run_id="r1",
        started_at=started,
        elapsed=timedelta(minutes=47),
        threshold=timedelta(minutes=30),
        source="Dagster",
        holds_lock=False,
    )
    assert alert.facts["run id"] == "r1"
    assert alert.facts["started"] == "2026-03-30T04:00:00+00:00"
    assert alert.facts["elapsed"] == "47 min"
    assert "worker is probably gone" in alert.text


def test_stale_lock_alert_names_the_pid_to_terminate() -> None:
    holder = LockHolder(4242, "reminders-run:r9", datetime(2026, 1, 1, tzinfo=UTC), None, "r9")
    alert = stale_lock_alert(holder=holder, why="its Dagster run is SUCCESS")
    assert alert.facts["to free it"] == "SELECT pg_terminate_backend(4242);"
    assert "not terminated automatically" in alert.text


def test_a_sink_prints_without_its_credentials() -> None:
    smtp = SmtpSink("mail.example.org", "dagster@example.org", username="u", password="s3cret-pw")
    slack = WebhookSink("https://hooks.example.org/T0/B0/s3cret-path", Alert.as_slack, "slack")
    assert "s3cret" not in repr(smtp) and "s3cret" not in repr(slack)
    assert "mail.example.org" in repr(smtp) and "'slack'" in repr(slack)
