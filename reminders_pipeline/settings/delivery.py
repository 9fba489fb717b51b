"""The delivery settings: channels, language, SMTP, webhook and its Standard Webhooks
secrets, retries (the lease and its bounds: delivery_lease.py)."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote, urlsplit

from reminders_pipeline.settings.setting import Setting, choice, integer, parse_list, string

CHANNEL_NAMES = ("in_app", "email", "webhook")
LANGUAGES = ("nb", "en")


def parse_channels(setting: Setting[Any], raw: str) -> list[str]:
    channels = parse_list(setting, raw.lower())
    unknown = [name for name in channels if name not in CHANNEL_NAMES]
    if unknown:
        raise setting.error(
            f"names unknown channels {unknown}: the channels are {', '.join(CHANNEL_NAMES)}"
        )
    if not channels:
        raise setting.error("must name at least one channel")
    return list(dict.fromkeys(channels))


def parse_http_url(setting: Setting[Any], raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise setting.error("must be an http:// or https:// URL with a host")
    return raw


def parse_webhook_secrets(setting: Setting[Any], raw: str) -> list[str]:
    """One or more `whsec_<base64>` secrets, space- or comma-separated (rotation: old and
    new at once); each must decode to 24 to 64 bytes, as the Standard Webhooks spec asks."""
    secrets = raw.replace(",", " ").split()
    for n, secret in enumerate(secrets, start=1):
        which = f" (secret {n} of {len(secrets)})" if len(secrets) > 1 else ""
        try:
            if not secret.startswith("whsec_"):
                raise ValueError("no whsec_ prefix")
            key = base64.b64decode(secret[len("whsec_") :], validate=True)
        except (binascii.Error, ValueError):
            raise setting.error(
                f"must be whsec_ followed by the base64 of 24 to 64 random bytes{which}; make "
                'one with: python3 -c "import base64, os; '
                "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\""
            ) from None
        if not 24 <= len(key) <= 64:
            raise setting.error(f"must decode to 24 to 64 bytes, got {len(key)}{which}")
    if not secrets:
        raise setting.error("names no secret")
    return secrets


def parse_smtp_url(setting: Setting[Any], raw: str) -> dict[str, Any]:
    """host, port, username, password of an smtp://[user:password@]host:port URL."""
    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme != "smtp" or not parts.hostname or port == -1:
        problem = "must be smtp://[user:password@]host:port (security: REMINDERS_SMTP_SECURITY)"
        raise setting.error(problem)
    return {
        "host": parts.hostname,
        "port": port or 25,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }


CHANNELS = Setting(
    "REMINDERS_CHANNELS",
    "list",
    ["in_app"],
    "the organisation's reminder channels, comma-separated (`in_app`, `email`, `webhook`); "
    "a mentor's own list (`reminders mentor`) wins",
    parse_channels,
    default_text="`in_app`",
)
LANGUAGE = choice(
    "REMINDERS_LANGUAGE",
    "nb",
    "the organisation's language of reminder emails; a mentor's own wins",
    LANGUAGES,
)
SMTP_URL = string(
    "REMINDERS_SMTP_URL",
    None,
    "SMTP server of reminder emails: `smtp://[user:password@]host:port`",
    parse_smtp_url,
    secret=True,
)
SMTP_SECURITY = choice(
    "REMINDERS_SMTP_SECURITY",
    "starttls",
    "`starttls` (upgrade a plain connection), `tls` (TLS from the start, port 465) or `none`",
    ("starttls", "tls", "none"),
)
EMAIL_FROM = string("REMINDERS_EMAIL_FROM", None, "sender (From) of reminder emails")
WEBHOOK_URL = string(
    "REMINDERS_WEBHOOK_URL",
    None,
    "where reminder webhooks are POSTed (JSON, signed)",
    parse_http_url,
    secret=True,
)
WEBHOOK_SECRET = Setting(
    "REMINDERS_WEBHOOK_SECRET",
    "list",
    None,
    "Standard Webhooks secret(s) signing every webhook: `whsec_<base64>`, space-separated "
    "to sign with several while rotating (required with a webhook URL)",
    parse_webhook_secrets,
    secret=True,
)
DELIVERY_TIMEOUT_S = integer(
    "REMINDERS_DELIVERY_TIMEOUT_S",
    10,
    "deadline of one send, whole (connect, TLS, request, answer), whatever the peer does",
    1,
    300,
)
DELIVERY_CONCURRENCY = integer(
    "REMINDERS_DELIVERY_CONCURRENCY", 16, "sends in flight at once, per channel", 1, 256
)
DELIVERY_BATCH_SIZE = integer(
    "REMINDERS_DELIVERY_BATCH_SIZE",
    200,
    "deliveries leased per claim, never more than REMINDERS_DELIVERY_CONCURRENCY",
    1,
    10_000,
)
DELIVERY_RETRY_BASE_S = integer(
    "REMINDERS_DELIVERY_RETRY_BASE_S",
    60,
    "first retry delay; doubles per attempt, with full jitter, up to a day",
    1,
    86_400,
)
DELIVERY_MAX_ATTEMPTS = integer(
    "REMINDERS_DELIVERY_MAX_ATTEMPTS", 8, "attempts before a delivery is `dead`", 1, 100
)
DELIVERY_MAX_RUNTIME_S = integer(
    "REMINDERS_DELIVERY_MAX_RUNTIME_S",
    15 * 60,
    "a drain stops claiming after this long; the delivery job's `dagster/max_runtime` is "
    "this plus a margin",
    10,
    24 * 60 * 60,
)
DELIVERY_RETRY_MINUTES = integer(
    "REMINDERS_DELIVERY_RETRY_MINUTES",
    10,
    "the delivery schedule's interval (minutes; cron `*/N`, restarted each hour: even "
    "only when N divides 60)",
    1,
    60,
)
DELIVERY_MAX_PENDING_AGE_S = integer(
    "REMINDERS_DELIVERY_MAX_PENDING_AGE_S",
    6 * 60 * 60,
    "delivery sensor: alert when the oldest pending delivery is older than this",
    60,
)
