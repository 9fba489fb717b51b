"""How the deliverer is configured: from the REMINDERS_* delivery settings, read when called."""

from __future__ import annotations

from dataclasses import dataclass, field

from reminders_pipeline.delivery.email import SmtpSender
from reminders_pipeline.delivery.reminder import Sender
from reminders_pipeline.errors import ConfigError
from reminders_pipeline.settings import delivery_settings as s
from reminders_pipeline.settings.delivery_lease import DELIVERY_LEASE_S, check_lease


@dataclass(frozen=True)
class DeliveryConfig:
    org_channels: list[str] = field(default_factory=lambda: ["in_app"])
    language: str = "nb"
    timeout_s: float = 10.0
    lease_s: float = 60.0
    concurrency: int = 16
    batch_size: int = 200
    retry_base_s: float = 60.0
    max_attempts: int = 8
    max_runtime_s: float = 15 * 60.0

    def __post_init__(self) -> None:
        check_lease(self.lease_s, self.timeout_s)

    @classmethod
    def from_env(cls) -> DeliveryConfig:
        return cls(
            org_channels=s.CHANNELS.get(),
            language=s.LANGUAGE.get(),
            timeout_s=float(s.DELIVERY_TIMEOUT_S.get()),
            lease_s=float(DELIVERY_LEASE_S.get()),
            concurrency=s.DELIVERY_CONCURRENCY.get(),
            batch_size=s.DELIVERY_BATCH_SIZE.get(),
            retry_base_s=float(s.DELIVERY_RETRY_BASE_S.get()),
            max_attempts=s.DELIVERY_MAX_ATTEMPTS.get(),
            max_runtime_s=float(s.DELIVERY_MAX_RUNTIME_S.get()),
        )


# What each sending channel needs set (in_app needs nothing: it is never sent).
CHANNEL_SETTINGS = {
    "email": "REMINDERS_SMTP_URL and REMINDERS_EMAIL_FROM",
    "webhook": "REMINDERS_WEBHOOK_URL and REMINDERS_WEBHOOK_SECRET",
}


def not_configured(channel: str) -> str:
    """Why a channel's deliveries wait, naming the settings that would serve it."""
    needs = CHANNEL_SETTINGS.get(channel)
    return f"the {channel} channel is not configured" + (f" (set {needs})" if needs else "")


def no_channel_note() -> str | None:
    """Said by a run when no sending channel is configured at all, else None."""
    if s.SMTP_URL.get() or s.WEBHOOK_URL.get():
        return None
    return (
        "no delivery channel is configured, so reminders are not sent (in-app only): "
        + "; ".join(f"{channel} needs {needs}" for channel, needs in CHANNEL_SETTINGS.items())
    )


def senders_from_env(concurrency: int) -> dict[str, Sender]:
    """The senders whose settings are present; a half-configured channel is an error."""
    senders: dict[str, Sender] = {}
    smtp_url = s.SMTP_URL.get()
    if smtp_url:
        sender = s.EMAIL_FROM.get()
        if not sender:
            raise ConfigError("REMINDERS_EMAIL_FROM is required when REMINDERS_SMTP_URL is set")
        server = s.smtp_server(smtp_url)
        senders["email"] = SmtpSender(
            server["host"],
            server["port"],
            sender,
            security=s.SMTP_SECURITY.get(),
            username=server["username"],
            password=server["password"],
        )
    webhook_url = s.WEBHOOK_URL.get()
    if webhook_url:
        secret = s.WEBHOOK_SECRET.get()
        if not secret:
            raise ConfigError(
                "REMINDERS_WEBHOOK_SECRET is required when REMINDERS_WEBHOOK_URL is set"
            )
        # Here: its HTTP client (httpx) would slow the start of every command and run.
        from reminders_pipeline.delivery.webhook import WebhookSender

        senders["webhook"] = WebhookSender(webhook_url, secret, concurrency=concurrency)
    return senders
