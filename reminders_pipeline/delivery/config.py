"""How the deliverer is configured: from the REMINDERS_* delivery settings, read when called."""

from __future__ import annotations

from dataclasses import dataclass

from reminders_pipeline.delivery.email import SmtpSender
from reminders_pipeline.delivery.reminder import Sender
from reminders_pipeline.errors import ConfigError
from reminders_pipeline.settings.delivery import (
    CHANNELS,
    DELIVERY_BATCH_SIZE,
    DELIVERY_CONCURRENCY,
    DELIVERY_MAX_ATTEMPTS,
    DELIVERY_MAX_RUNTIME_S,
    DELIVERY_RETRY_BASE_S,
    DELIVERY_TIMEOUT_S,
    EMAIL_FROM,
    LANGUAGE,
    SMTP_SECURITY,
    SMTP_URL,
    WEBHOOK_SECRET,
    WEBHOOK_URL,
)
from reminders_pipeline.settings.delivery_lease import DELIVERY_LEASE_S, check_lease
from reminders_pipeline.settings.setting import FromEnv, bound


@dataclass(frozen=True)
class DeliveryConfig(FromEnv):
    org_channels: list[str] = bound(CHANNELS)
    language: str = bound(LANGUAGE)
    timeout_s: float = bound(DELIVERY_TIMEOUT_S)
    lease_s: float = bound(DELIVERY_LEASE_S)
    concurrency: int = bound(DELIVERY_CONCURRENCY)
    batch_size: int = bound(DELIVERY_BATCH_SIZE)
    retry_base_s: float = bound(DELIVERY_RETRY_BASE_S)
    max_attempts: int = bound(DELIVERY_MAX_ATTEMPTS)
    max_runtime_s: float = bound(DELIVERY_MAX_RUNTIME_S)

    def __post_init__(self) -> None:
        check_lease(self.lease_s, self.timeout_s)


# Per sending channel (in_app is never sent): the setting that turns it on, and the one
# it needs with it.
CHANNEL_SETTINGS = {
    "email": (SMTP_URL, EMAIL_FROM),
    "webhook": (WEBHOOK_URL, WEBHOOK_SECRET),
}


def configured_channels() -> list[str]:
    """The channels whose sender is configured (their URL is set)."""
    return [channel for channel, (url, _) in CHANNEL_SETTINGS.items() if url.get()]


def _needs(channel: str) -> str:
    url, needed = CHANNEL_SETTINGS[channel]
    return f"{url.name} and {needed.name}"


def not_configured(channel: str) -> str:
    """Why a channel's deliveries wait, naming the settings that would serve it."""
    needs = f" (set {_needs(channel)})" if channel in CHANNEL_SETTINGS else ""
    return f"the {channel} channel is not configured{needs}"


def no_channel_note() -> str | None:
    """Said by a run when no sending channel is configured at all, else None."""
    if configured_channels():
        return None
    return "no delivery channel is configured, so reminders are not sent (in-app only): " + (
        "; ".join(f"{channel} needs {_needs(channel)}" for channel in CHANNEL_SETTINGS)
    )


def senders_from_env(concurrency: int) -> dict[str, Sender]:
    """The senders whose settings are present; a half-configured channel is an error."""
    channels = configured_channels()
    for channel in channels:
        url, needed = CHANNEL_SETTINGS[channel]
        if not needed.get():
            raise ConfigError(f"{needed.name} is required when {url.name} is set")
    senders: dict[str, Sender] = {}
    if "email" in channels:
        # SMTP_URL reads as its host, port, username and password.
        senders["email"] = SmtpSender(
            **SMTP_URL.get(), sender=EMAIL_FROM.get(), security=SMTP_SECURITY.get()
        )
    if "webhook" in channels:
        # Here: its HTTP client (httpx) would slow the start of every command and run.
        from reminders_pipeline.delivery.webhook import WebhookSender

        senders["webhook"] = WebhookSender(
            WEBHOOK_URL.get(), WEBHOOK_SECRET.get(), concurrency=concurrency
        )
    return senders
