"""ReminderDispatchService: create due reminders idempotently, batch by batch.

Active assignments are walked in id order (keyset pagination); each batch is
one INSERT ... SELECT ... ON CONFLICT DO NOTHING committed on its own, so a
crash mid-run loses nothing and the next run finishes the rest. Nothing is
loaded into Python but one summary row per batch.

A run hands in `transaction`: a transaction on its lock's own session, so each
batch (and the batch's counts on the run's row) commits only while that session
lives, and dies with it. Without one (benchmarks, tools that hold no lock) the
batches share one short session of their own, a transaction each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date

from reminders_pipeline.core.runlog import RunCounts
from reminders_pipeline.db.connector import Database, Session
from reminders_pipeline.db.lock_keys import DISPATCH_LOCK
from reminders_pipeline.db.queries import query
from reminders_pipeline.settings import ReminderSettings

FOLLOW_UP_REMINDER = "follow_up_reminder"
# Dispatch writes in-app reminders only: the in-app inbox reads the outbox, so its
# row *is* the delivered reminder. Email and webhook are senders of the deliverer
# (delivery/), which expands reminders into deliveries rows of their own.
IN_APP_CHANNEL = "in_app"

Transaction = Callable[[], AbstractContextManager[Session]]


def without_probe(sql: str) -> str:
    """The batch statement without its anti-join (the lines between its probe markers)."""
    begin, end = sql.index("-- probe: begin"), sql.index("-- probe: end")
    return sql[:begin] + sql[end + len("-- probe: end") :]


DISPATCH_BATCH = query("dispatch_due_batch")
DISPATCH_BATCH_UNPROBED = without_probe(DISPATCH_BATCH)


@dataclass(frozen=True)
class BatchProgress:
    batches: int
    scanned: int
    counts: RunCounts
    elapsed_s: float


class ReminderDispatchService:
    def __init__(self, db: Database, settings: ReminderSettings) -> None:
        self.db = db
        self.settings = settings

    def dispatch(
        self,
        as_of: date,
        run_row_id: int | None,
        *,
        transaction: Transaction | None = None,
        before_batch: Callable[[], None] = lambda: None,
        on_progress: Callable[[BatchProgress], None] = lambda progress: None,
    ) -> RunCounts:
        """Create the reminders due on as_of. `before_batch` may raise to stop (lock lost)."""
        if transaction is None:
            # One session for every batch, a transaction each (no reconnect per batch).
            with self.db.connection(autocommit=True) as session:
                return self.dispatch(
                    as_of,
                    run_row_id,
                    transaction=session.transaction,
                    before_batch=before_batch,
                    on_progress=on_progress,
                )
        started = time.perf_counter()
        after_id = 0
        batches = scanned = selected = created = 0
        counts = RunCounts()
        # Reminders exist beyond after_id, so the anti-join may find some. Once no
        # reminder is beyond it, none ever is in this run: the run lock keeps other
        # runs out, and this one inserts only up to each batch's last id.
        probe = True
        while True:
            before_batch()
            with transaction() as conn:
                conn.execute(query("dispatch_plan_guard"))
                # Its own statement: the INSERT's snapshot is taken once it is granted.
                conn.execute(query("dispatch_correction_guard"), DISPATCH_LOCK.params())
                if probe:
                    found = conn.execute(
                        query("dispatch_reminders_beyond"), {"after_id": after_id}
                    ).fetchone()
                    probe = bool(found and found["found"])
                row = conn.execute(
                    DISPATCH_BATCH if probe else DISPATCH_BATCH_UNPROBED,
                    {
                        "after_id": after_id,
                        "batch_size": self.settings.batch_size,
                        "as_of": as_of,
                        "default_interval": self.settings.default_interval_days,
                        "max_per_silence": self.settings.max_reminders_per_silence,
                        "kind": FOLLOW_UP_REMINDER,
                        "channel": IN_APP_CHANNEL,
                        "state": "delivered",
                        "run_id": run_row_id,
                    },
                ).fetchone()
                if row["last_id"] is None:  # no active assignment after after_id: done
                    break
                if run_row_id is not None:
                    conn.execute(
                        query("add_run_batch_counts"),
                        {
                            "id": run_row_id,
                            "selected": row["due"],
                            "created": row["created"],
                            "already_existed": row["due"] - row["created"],
                        },
                    )
            after_id = row["last_id"]
            batches += 1
            scanned += row["scanned"]
            selected += row["due"]
            created += row["created"]
            counts = RunCounts(selected, created, already_existed=selected - created)
            on_progress(BatchProgress(batches, scanned, counts, time.perf_counter() - started))
            if row["scanned"] < self.settings.batch_size:
                break
        return counts
