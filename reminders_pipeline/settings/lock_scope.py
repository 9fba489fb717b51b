"""Which lock `reminders run` takes (REMINDERS_LOCK_SCOPE); part of the registry.

`session`: the batched run under the session-level lock (direct connection or a
session-mode pooler; a transaction-mode pooler is refused). `transaction`: the
day as one call of reminders_run_day() under the transaction-level lock on the
same key, which works through any connection. `auto`: `transaction` when the
connection goes through a pooler that does not keep one server connection per
client, `session` otherwise (docs/decisions/lock-scope.md).
"""

from __future__ import annotations

from reminders_pipeline.settings.setting import choice

LOCK_SCOPE = choice(
    "REMINDERS_LOCK_SCOPE",
    "auto",
    "`reminders run`'s lock: `session` (batched run), `transaction` (one call of "
    "`reminders_run_day()`), `auto` (transaction behind a transaction-mode pooler)",
    ("auto", "session", "transaction"),
)
