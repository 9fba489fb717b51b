"""Fenced outcomes: a `reminders deliver` frozen (SIGSTOP) mid-send past its lease, a
second one that sends and records `sent`, then the first resumed with its send failing:
the delivery stays `sent`, the late outcome is logged and changes nothing, and a third
drain sends nothing."""

from __future__ import annotations

import signal

import pytest

from reminders_pipeline.db.connector import Database
from tests.helpers.data import db_rows
from tests.helpers.delivery_servers import SECRET, ReminderReceiver
from tests.helpers.outbox import due_reminders
from tests.helpers.runs import RemindersCli, wait_for

pytestmark = pytest.mark.acceptance

TIMEOUT_S = 2
LEASE_S = TIMEOUT_S + 5 + 1  # the least the settings accept: timeout + 5 s margin, + 1


def _row(db: Database) -> dict:
    [row] = db_rows(
        db,
        "SELECT state, attempts, lease_token, next_attempt_at <= now() AS lease_over"
        " FROM deliveries",
    )
    return row


def test_a_frozen_deliverers_late_outcome_changes_nothing(
    db: Database, reminders_cli: RemindersCli
) -> None:
    due_reminders(db, 1, channels=["webhook"])
    # The first request hangs (the frozen deliverer's send); every later one is accepted.
    with ReminderReceiver(answers=["hang"], then=200) as receiver:
        env = {
            "REMINDERS_WEBHOOK_URL": receiver.url(),
            "REMINDERS_WEBHOOK_SECRET": SECRET,
            "REMINDERS_DELIVERY_TIMEOUT_S": str(TIMEOUT_S),
            "REMINDERS_DELIVERY_LEASE_S": str(LEASE_S),
        }
        first = reminders_cli.start("deliver", "--json", env=env)
        wait_for(lambda: receiver.requests, timeout=30, what="the first deliverer's send")
        first.popen.send_signal(signal.SIGSTOP)
        try:
            leased = _row(db)
            assert (leased["state"], leased["attempts"]) == ("pending", 1)
            assert leased["lease_token"] is not None
            # The frozen process holds nothing on the server: no transaction, no lock.
            sessions = db_rows(
                db,
                "SELECT state, xact_start FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'",
            )
            assert sessions, "the frozen deliverer's sessions are gone"
            assert all(s["xact_start"] is None for s in sessions), sessions
            locks = db_rows(
                db,
                "SELECT l.locktype, l.mode FROM pg_locks AS l"
                " JOIN pg_database AS d ON d.oid = l.database"
                " WHERE d.datname = current_database() AND l.pid <> pg_backend_pid()",
            )
            assert locks == []
            wait_for(lambda: _row(db)["lease_over"], timeout=LEASE_S + 10, what="the lease's end")

            second = reminders_cli("deliver", "--json", env=env)
            assert second.returncode == 0, second.describe()
            assert second.json()["sent"] == 1
            after = _row(db)
            assert (after["state"], after["attempts"], after["lease_token"]) == ("sent", 2, None)
            assert first.alive(), "the frozen deliverer ended while frozen"
        finally:
            first.popen.send_signal(signal.SIGCONT)
        resumed = first.wait(60)
        assert resumed.returncode == 0, resumed.describe()
        counts = resumed.json()
        assert (counts["sent"], counts["retry"], counts["late"]) == (0, 0, 1), counts
        assert "late outcome of delivery" in resumed.stderr
        assert "timed out" in resumed.stderr  # the send it resumed into failed

        third = reminders_cli("deliver", "--json", env=env)
        assert third.json()["sent"] == 0, third.describe()
        assert len(receiver.requests) == 2, "the receiver got a third send"
        assert dict(receiver.accepted) == {"reminder-1-webhook": 1}
    final = _row(db)
    assert (final["state"], final["attempts"]) == ("sent", 2)
