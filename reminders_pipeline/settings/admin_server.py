"""How `reminders admin serve` bounds its connections (docs/decisions/admin-server.md).

A client that trickles its request head, or opens a connection and sends nothing,
or stays idle after a response, is cut at the head timeout; a body that has not
arrived by the body timeout gets 408 and its connection is closed; at most
MAX_CONNECTIONS connections are served at once and the rest wait in the listen
backlog, so file descriptors stay bounded whatever clients do.
"""

from __future__ import annotations

from reminders_pipeline.settings.setting import integer

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
