"""Pruning old reminders, so a year of daily runs stays as fast as the first day.

Deletes, in short committed batches (no long lock, no bloat spike), reminders
created before a cutoff whose silence is over. What always stays (the rule is
`prune_reminders_batch` in queries.sql):
- reminders of a silence still running (the assignment's last contact is still
  their silence's start): their natural key is what stops the next run from
  creating them again;
- reminders not delivered yet: 'pending' ones, those the deliverer has not
  expanded yet, and those with a delivery still to send.
The run lock is not needed: dispatch only inserts rows of running silences,
which pruning never deletes.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from reminders_pipeline.db.connector import Database
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
        row = db.fetch_one("prune_reminders_batch", before=before, batch_size=batch_size)
        deleted = row["deleted"] if row else 0
        total += deleted
        if deleted < batch_size:
            return total
