"""The alert resource: one place that knows which sinks are configured."""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource, EnvVar

from reminders_pipeline import settings
from reminders_pipeline.alerts.messages import Alert, run_url
from reminders_pipeline.alerts.sinks import (
    DEFAULT_TIMEOUT_S,
    AlertSink,
    LogSink,
    SmtpSink,
    WebhookSink,
    deliver,
)


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
    ui_base_url: str | None = settings.DAGSTER_UI_URL.default
    max_tries: int = 3
    backoff_factor_s: float = 0.5
    timeout_s: float = DEFAULT_TIMEOUT_S

    def sinks(self, logger: Any = None) -> list[AlertSink]:
        sinks: list[AlertSink] = [LogSink(logger)]
        if self.slack_webhook_url:
            sinks.append(
                WebhookSink(self.slack_webhook_url, Alert.as_slack, "slack", self.timeout_s)
            )
        if self.webhook_url:
            sinks.append(WebhookSink(self.webhook_url, Alert.as_json, "webhook", self.timeout_s))
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


def _secret(setting: settings.Setting[str | None]) -> Any:
    # EnvVar keeps the value out of the UI's resource config; only when it is set,
    # since an unset EnvVar fails the code location.
    return EnvVar(setting.name) if setting.is_set() else None


def alert_resource_from_env() -> AlertResource:
    """Configuration from the REMINDERS_ALERT_* settings (reminders_pipeline.settings)."""
    return AlertResource(
        slack_webhook_url=_secret(settings.ALERT_SLACK_WEBHOOK_URL),
        webhook_url=_secret(settings.ALERT_WEBHOOK_URL),
        smtp_host=settings.ALERT_SMTP_HOST.get(),
        smtp_port=settings.ALERT_SMTP_PORT.get(),
        smtp_sender=settings.ALERT_EMAIL_FROM.get(),
        smtp_recipients=settings.ALERT_EMAIL_TO.get(),
        smtp_username=settings.ALERT_SMTP_USERNAME.get(),
        smtp_password=_secret(settings.ALERT_SMTP_PASSWORD),
        smtp_starttls=settings.ALERT_SMTP_STARTTLS.get(),
        ui_base_url=settings.DAGSTER_UI_URL.get(),
        max_tries=settings.ALERT_MAX_TRIES.get(),
    )
