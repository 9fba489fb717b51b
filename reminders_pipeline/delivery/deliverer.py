"""Deliverer: drain the outbox once: expand new reminders into deliveries, then send.

Expanding: reminders created since the last drain become one delivery per channel of
their mentor that leaves the database (none at all when every mentor is in-app
only). It waits while a run holds the run lock (reads pg_locks, never takes the
lock) and goes only up to the highest notifications id handed out before that
check, so a reminder still being written is never skipped.

Sending: one lane per channel (delivery/lane.py: leases, fenced outcomes), a thread
with its own database session, so a dead SMTP server never slows the webhooks. A
crash or a freeze leaves the leased deliveries due when the lease ends: they are sent
again, once, with the same Idempotency-Key (at least once;
docs/decisions/delivery-outbox.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.lock_holder import lock_holders
from reminders_pipeline.delivery.config import (
    DeliveryConfig,
    configured_channels,
    not_configured,
    senders_from_env,
)
from reminders_pipeline.delivery.lane import DrainReport, Lane
from reminders_pipeline.delivery.reminder import Sender
from reminders_pipeline.settings import ReminderSettings
from reminders_pipeline.settings.delivery import CHANNELS

log = logging.getLogger(__name__)

EXPAND_BATCH = 50_000


def _value(row: dict[str, Any] | None, column: str) -> Any:
    assert row is not None, "a one-row query returned no row"
    return row[column]


@dataclass
class Deliverer:
    db: Database
    config: DeliveryConfig
    senders: dict[str, Sender]
    today: Callable[[], object]

    def drain(self) -> DrainReport:
        report = DrainReport()
        deadline = time.monotonic() + self.config.max_runtime_s
        report.expanded = self.expand()
        due_by = _value(self.db.fetch_one("delivery_clock"), "now")
        lanes = [
            threading.Thread(
                target=Lane(self.db, self.config, self.today, sender, due_by, deadline, report).run,
                name=f"deliver-{name}",
            )
            for name, sender in self.senders.items()
        ]
        for lane in lanes:
            lane.start()
        for lane in lanes:
            lane.join()
        for row in self.db.fetch_all("due_delivery_channels"):
            if row["channel"] not in self.senders:
                report.problems.append(
                    f"{row['due']} {row['channel']} deliveries are waiting: "
                    f"{not_configured(row['channel'])}"
                )
        return report

    def close(self) -> None:
        for sender in self.senders.values():
            sender.close()

    def expand(self) -> int:
        """New reminders into deliveries; returns how many deliveries were created."""
        created = 0
        with self.db.connection(autocommit=True) as session:
            # The high mark first, then the lock check: see the module's docstring.
            high_mark = _value(session.one("delivery_id_high_mark"), "high_mark")
            if lock_holders(session):  # read only: the deliverer never takes the run lock
                log.info("a reminders run holds the run lock: its reminders wait for a drain")
                return 0
            org = self.config.org_channels
            needed = _value(session.one("deliveries_needed", org_channels=org), "needed")
            while True:
                with session.transaction():
                    cursor = session.one("lock_delivery_cursor")
                    if cursor is None or cursor["last_notification_id"] >= high_mark:
                        return created  # another deliverer expanded it, or nothing new
                    after = cursor["last_notification_id"]
                    if not needed:  # in-app only: move the cursor, nothing else
                        session.run("advance_delivery_cursor", upto=high_mark)
                        return created
                    upto = min(after + EXPAND_BATCH, high_mark)
                    created += session.run(
                        "expand_deliveries", org_channels=org, after_id=after, upto=upto
                    )
                    session.run("advance_delivery_cursor", upto=upto)


def drain_from_env(db: Database) -> DrainReport:
    """Drain once with the configuration and senders of the environment, then close them."""
    config = DeliveryConfig.from_env()
    deliverer = Deliverer(
        db, config, senders_from_env(config.concurrency), ReminderSettings.from_env().today
    )
    with closing(deliverer):
        return deliverer.drain()


def drain_needed(db: Database) -> bool:
    """Whether a drain should run now (for the delivery schedule, without building any
    sender): deliveries due on a configured channel (a channel without a sender is left
    to the health sensor's backlog alert), or reminders past the expansion cursor that
    some mentor gets by email or webhook (a failed or skipped expansion must not wait
    for the next day's run)."""
    row = db.fetch_one(
        "delivery_work_waiting", channels=configured_channels(), org_channels=CHANNELS.get()
    )
    return bool(_value(row, "due") or _value(row, "unexpanded"))
