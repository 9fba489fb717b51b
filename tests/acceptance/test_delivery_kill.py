"""At least once, never lost: SIGKILL a real `reminders deliver` mid-batch, start it again,
and count what the receiver accepted per Idempotency-Key."""

from __future__ import annotations

from collections import Counter

import pytest

from reminders_pipeline.db.connector import Database
from tests.helpers.data import db_rows
from tests.helpers.delivery_servers import SECRET, ReminderReceiver, settled
from tests.helpers.outbox import due_reminders
from tests.helpers.runs import RemindersCli, wait_for

pytestmark = pytest.mark.acceptance

COUNT = 400
BATCH = 50
CONCURRENCY = 4


def test_sigkill_mid_batch_loses_nothing_and_repeats_at_most_once_per_key(
    db: Database, reminders_cli: RemindersCli
) -> None:
    due_reminders(db, COUNT, channels=["webhook"])
    with ReminderReceiver(delay_s=0.01) as receiver:
        env = {
            "REMINDERS_WEBHOOK_URL": receiver.url(),
            "REMINDERS_WEBHOOK_SECRET": SECRET,
            "REMINDERS_DELIVERY_BATCH_SIZE": str(BATCH),
            "REMINDERS_DELIVERY_CONCURRENCY": str(CONCURRENCY),
        }
        first = reminders_cli.start("deliver", "--json", env=env)
        # Mid-drain: many outcomes recorded, a lease in flight.
        wait_for(
            lambda: len(receiver.requests) >= 3 * BATCH + BATCH // 2,
            timeout=60,
            what="the deliverer to be inside its fourth batch",
        )
        first.kill()
        sent_before_kill = settled(lambda: len(receiver.requests))
        assert 0 < sent_before_kill < COUNT
        accepted_before = Counter(receiver.accepted)
        # Leased at the kill, outcome not recorded: these, and only these, may repeat.
        leased = {
            f"reminder-{r['notification_id']}-webhook"
            for r in db_rows(
                db,
                "SELECT notification_id FROM deliveries"
                " WHERE state IN ('pending', 'retry') AND attempts > 0",
            )
        }
        assert len(leased) <= CONCURRENCY
        with db.connection() as conn:  # as if the lease had run out
            conn.execute("UPDATE deliveries SET next_attempt_at = now() WHERE attempts > 0"
                         " AND state IN ('pending', 'retry')")  # fmt: skip
        second = reminders_cli("deliver", "--json", env=env)
        assert second.returncode == 0, second.describe()
        counts = second.json()

    keys = {f"reminder-{r['id']}-webhook" for r in db_rows(db, "SELECT id FROM notifications")}
    assert receiver.bad_signatures == 0
    assert set(receiver.accepted) == keys, "a reminder was never delivered"
    repeats = {key: n for key, n in receiver.accepted.items() if n > 1}
    assert max(receiver.accepted.values()) <= 2, "a key was sent three times or more"
    # Exactly the leased deliveries the receiver had accepted before the kill were sent
    # again (their outcome was not recorded); every other key went once.
    assert set(repeats) == {key for key in leased if accepted_before[key]}
    # The restart sent what the killed one had not recorded: the rest, and the batch in flight.
    assert counts["sent"] >= COUNT - sent_before_kill + len(repeats)
    assert (counts["retry"], counts["dead"], counts["cancelled"]) == (0, 0, 0)
    states = db_rows(db, "SELECT state, count(*) AS n FROM deliveries GROUP BY state")
    assert states == [{"state": "sent", "n": COUNT}]
