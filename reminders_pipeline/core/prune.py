"""Pruning old reminders, so a year of daily runs stays as fast as the first day.

Deletes, in short committed batches (no long lock, no bloat spike), reminders
created before a cutoff whose silence is over. Two kinds always stay:
- reminders of a silence still running (the assignment's last contact is still
  their silence's start): their natural key is what stops the next run from
  creating them again;
- 'pending' reminders, not delivered yet. When a deliveries table references
  reminders, a reminder with a delivery not done must stay too: that condition
  belongs in `prune_reminders_batch` (queries.sql), beside the 'pending' one.
The run lock is not needed: dispatch only inserts rows of running silences,
which pruning never deletes.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.queries import query
from reminders_pipeline.errors import ConfigError

PRUNE_BATCH = 10_000


def prune_cutoff(today: date, older_than_days: int, timezone: str) -> datetime:
    """Midnight, in the organisation's timezone, `older_than_days` before today."""
    if older_than_days < 1:
        raise ConfigError(f"--older-than must be at least 1 day, got {older_than_days}")
    return datetime.combine(today - timedelta(days=older_than_days), time(), ZoneInfo(timezone))


def prune_reminders(db: Database, before: datetime, *, batch_size: int = PRUNE_BATCH) -> int:
    """Delete prunable reminders created before `before`; how many were deleted."""
    total = 0
    while True:
        with db.connection() as conn:
            row = conn.execute(
                query("prune_reminders_batch"), {"before": before, "batch_size": batch_size}
            ).fetchone()
        deleted = row["deleted"] if row else 0
        total += deleted
        if deleted < batch_size:
            return total
