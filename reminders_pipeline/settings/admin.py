"""The admin API's settings: its bounded waits and its bounded input (docs/admin-api.md).

How `reminders admin serve` bounds its connections (docs/decisions/admin-server.md):
a client that trickles its request head, or opens a connection and sends nothing,
or stays idle after a response, is cut at the head timeout; a body that has not
arrived by the body timeout gets 408 and its connection is closed; at most
MAX_CONNECTIONS connections are served at once and the rest wait in the listen
backlog, so file descriptors stay bounded whatever clients do.
"""

from __future__ import annotations

from dataclasses import dataclass

from reminders_pipeline.settings.setting import FromEnv, bound, integer, switch

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
ADMIN_DOCS = switch(
    "REMINDERS_ADMIN_DOCS",
    True,
    "admin API: serve `/docs` (Swagger UI from the installed package, no CDN)",
)
ADMIN_HEAD_TIMEOUT_S = integer(
    "REMINDERS_ADMIN_HEAD_TIMEOUT_S",
    10,
    "admin API: a connection that has not sent a whole request head this long after it "
    "opened or after its last answer (a slow or an idle client) is closed",
    1,
    300,
)
ADMIN_BODY_TIMEOUT_S = integer(
    "REMINDERS_ADMIN_BODY_TIMEOUT_S",
    10,
    "admin API: a request body not complete this long after its head gets 408 and the "
    "connection is closed",
    1,
    300,
)
ADMIN_MAX_CONNECTIONS = integer(
    "REMINDERS_ADMIN_MAX_CONNECTIONS",
    256,
    "admin API: connections served at once; more wait in the listen backlog until one closes",
    1,
    10_000,
)


@dataclass(frozen=True)
class AdminApiSettings(FromEnv):
    """What the admin API holds itself to."""

    pool_max: int = bound(ADMIN_POOL_MAX)
    pool_timeout_s: float = bound(ADMIN_POOL_TIMEOUT_S)
    lock_timeout_ms: int = bound(ADMIN_LOCK_TIMEOUT_MS)
    statement_timeout_ms: int = bound(ADMIN_STATEMENT_TIMEOUT_MS)
    max_body_bytes: int = bound(ADMIN_MAX_BODY_BYTES)
    max_header_bytes: int = bound(ADMIN_MAX_HEADER_BYTES)
    auth_failures_per_minute: int = bound(ADMIN_AUTH_FAILURES_PER_MINUTE)
    docs: bool = bound(ADMIN_DOCS)
    head_timeout_s: int = bound(ADMIN_HEAD_TIMEOUT_S)
    body_timeout_s: int = bound(ADMIN_BODY_TIMEOUT_S)
    max_connections: int = bound(ADMIN_MAX_CONNECTIONS)
