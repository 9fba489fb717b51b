"""The alert resource: one place that knows which sinks are configured."""

from __future__ import annotations

import os
from typing import Any

from dagster import ConfigurableResource, EnvVar

from reminders_pipeline.alerts.messages import Alert, run_url
from reminders_pipeline.alerts.sinks import (
    DEFAULT_TIMEOUT_S,
    AlertSink,
    JsonWebhookSink,
    LogSink,
    SlackWebhookSink,
    SmtpSink,
    deliver,
)

DEFAULT_UI_URL = "http://localhost:3000"


class AlertResource(ConfigurableResource):
    """Sends alerts to the log and to every configured sink; never raises."""

    slack_webhook_url: str | None = None
    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str = "reminders@localhost"
    smtp_recipients: list[str] = []
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    # Base URL of the Dagster UI, for links to runs.
    ui_base_url: str | None = DEFAULT_UI_URL
    max_tries: int = 3
    backoff_factor_s: float = 0.5
    timeout_s: float = DEFAULT_TIMEOUT_S

    def sinks(self, logger: Any = None) -> list[AlertSink]:
        sinks: list[AlertSink] = [LogSink(logger)]
        if self.slack_webhook_url:
            sinks.append(SlackWebhookSink(self.slack_webhook_url, self.timeout_s))
        if self.webhook_url:
            sinks.append(JsonWebhookSink(self.webhook_url, self.timeout_s))
        if self.smtp_host and self.smtp_recipients:
            sinks.append(
                SmtpSink(
                    host=self.smtp_host,
                    port=self.smtp_port,
                    sender=self.smtp_sender,
                    recipients=list(self.smtp_recipients),
                    username=self.smtp_username,
                    password=self.smtp_password,
                    starttls=self.smtp_starttls,
                    timeout_s=self.timeout_s,
                )
            )
        return sinks

    def send(self, alert: Alert, logger: Any = None) -> dict[str, bool]:
        return deliver(
            alert,
            self.sinks(logger),
            logger=logger,
            max_tries=self.max_tries,
            backoff_factor_s=self.backoff_factor_s,
        )

    def run_url(self, run_id: str) -> str | None:
        return run_url(self.ui_base_url, run_id)


def _secret(name: str) -> Any:
    # EnvVar keeps the value out of the UI's resource config; only when it is set,
    # since an unset EnvVar fails the code location.
    return EnvVar(name) if os.environ.get(name) else None


def alert_resource_from_env() -> AlertResource:
    """Configuration from REMINDERS_ALERT_* variables (docs/operations.md lists them)."""
    env = os.environ.get
    recipients = [r.strip() for r in env("REMINDERS_ALERT_EMAIL_TO", "").split(",") if r.strip()]
    return AlertResource(
        slack_webhook_url=_secret("REMINDERS_ALERT_SLACK_WEBHOOK_URL"),
        webhook_url=_secret("REMINDERS_ALERT_WEBHOOK_URL"),
        smtp_host=env("REMINDERS_ALERT_SMTP_HOST") or None,
        smtp_port=int(env("REMINDERS_ALERT_SMTP_PORT") or 25),
        smtp_sender=env("REMINDERS_ALERT_EMAIL_FROM") or "reminders@localhost",
        smtp_recipients=recipients,
        smtp_username=env("REMINDERS_ALERT_SMTP_USERNAME") or None,
        smtp_password=_secret("REMINDERS_ALERT_SMTP_PASSWORD"),
        smtp_starttls=(env("REMINDERS_ALERT_SMTP_STARTTLS") or "").lower() in ("1", "true", "yes"),
        ui_base_url=env("REMINDERS_DAGSTER_UI_URL") or DEFAULT_UI_URL,
        max_tries=int(env("REMINDERS_ALERT_MAX_TRIES") or 3),
    )
