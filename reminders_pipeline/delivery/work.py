"""Whether a drain has work: for the delivery schedule, without building any sender."""

from __future__ import annotations

from reminders_pipeline.db.connector import Database
from reminders_pipeline.delivery.config import configured_channels
from reminders_pipeline.settings.delivery import CHANNELS


def drain_needed(db: Database) -> str | None:
    """Why a drain should run now, or None: deliveries due on a configured channel (a
    channel without a sender is left to the health sensor's backlog alert), or
    reminders past the expansion cursor that some mentor gets by email or webhook (a
    failed or skipped expansion must not wait for the next day's run)."""
    row = db.fetch_one(
        "delivery_work_waiting", channels=configured_channels(), org_channels=CHANNELS.get()
    )
    assert row is not None
    if row["due"]:
        return "deliveries are due"
    if row["unexpanded"]:
        return "reminders wait to be expanded into deliveries"
    return None
