"""The admin API's settings: its bounded waits and its bounded input (docs/admin-api.md)."""

from __future__ import annotations

from dataclasses import dataclass

from reminders_pipeline.settings.admin_server import (
    ADMIN_BODY_TIMEOUT_S,
    ADMIN_HEAD_TIMEOUT_S,
    ADMIN_MAX_CONNECTIONS,
)
from reminders_pipeline.settings.setting import Setting, integer, parse_switch

ADMIN_POOL_MAX = integer(
    "REMINDERS_ADMIN_POOL_MAX", 10, "admin API: most database connections it holds", 1, 1000
)
ADMIN_POOL_TIMEOUT_S = integer(
    "REMINDERS_ADMIN_POOL_TIMEOUT_S",
    2,
    "admin API: how long a request waits for a free connection before a 503",
    1,
    60,
)
ADMIN_LOCK_TIMEOUT_MS = integer(
    "REMINDERS_ADMIN_LOCK_TIMEOUT_MS",
    2000,
    "admin API: how long a statement waits for a row lock before a 409",
    1,
    60_000,
)
ADMIN_STATEMENT_TIMEOUT_MS = integer(
    "REMINDERS_ADMIN_STATEMENT_TIMEOUT_MS",
    10_000,
    "admin API: the longest statement before a 503",
    100,
    600_000,
)
ADMIN_MAX_BODY_BYTES = integer(
    "REMINDERS_ADMIN_MAX_BODY_BYTES", 16_384, "admin API: largest request body (413)", 64
)
ADMIN_MAX_HEADER_BYTES = integer(
    "REMINDERS_ADMIN_MAX_HEADER_BYTES",
    8192,
    "admin API: largest request line and headers together (431)",
    1024,
    65_536,
)
ADMIN_AUTH_FAILURES_PER_MINUTE = integer(
    "REMINDERS_ADMIN_AUTH_FAILURES_PER_MINUTE",
    10,
    "admin API: failed authentications per client and minute before 429",
    1,
)
ADMIN_DOCS = Setting(
    "REMINDERS_ADMIN_DOCS",
    "on/off",
    True,
    "admin API: serve `/docs` (Swagger UI from the installed package, no CDN)",
    parse_switch,
)


@dataclass(frozen=True)
class AdminApiSettings:
    """What the admin API holds itself to; the defaults are the settings' defaults."""

    pool_max: int = 10
    pool_timeout_s: float = 2.0
    lock_timeout_ms: int = 2000
    statement_timeout_ms: int = 10_000
    max_body_bytes: int = 16_384
    max_header_bytes: int = 8192
    auth_failures_per_minute: int = 10
    docs: bool = True
    head_timeout_s: int = 10
    body_timeout_s: int = 10
    max_connections: int = 256

    @classmethod
    def from_env(cls) -> AdminApiSettings:
        return cls(
            pool_max=ADMIN_POOL_MAX.get(),
            pool_timeout_s=float(ADMIN_POOL_TIMEOUT_S.get()),
            lock_timeout_ms=ADMIN_LOCK_TIMEOUT_MS.get(),
            statement_timeout_ms=ADMIN_STATEMENT_TIMEOUT_MS.get(),
            max_body_bytes=ADMIN_MAX_BODY_BYTES.get(),
            max_header_bytes=ADMIN_MAX_HEADER_BYTES.get(),
            auth_failures_per_minute=ADMIN_AUTH_FAILURES_PER_MINUTE.get(),
            docs=ADMIN_DOCS.get(),
            head_timeout_s=ADMIN_HEAD_TIMEOUT_S.get(),
            body_timeout_s=ADMIN_BODY_TIMEOUT_S.get(),
            max_connections=ADMIN_MAX_CONNECTIONS.get(),
        )
