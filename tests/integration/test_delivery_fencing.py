"""Fenced outcomes in the database: only the claim's lease token records an outcome,
a final state never moves back, and the lease must outlast a send."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from reminders_pipeline.db.connector import Database
from reminders_pipeline.delivery.config import DeliveryConfig
from reminders_pipeline.errors import ConfigError, DatabaseError
from tests.helpers.data import db_rows
from tests.helpers.delivery_servers import ReminderReceiver
from tests.helpers.outbox import AS_OF, deliveries, due_reminders, make_deliverer

FAR = datetime(2100, 1, 1, tzinfo=UTC)  # due_by: every delivery is due


def _claim(db: Database, token: str, lease_s: float = 60) -> list[dict]:
    with db.connection(autocommit=True) as session:
        return session.all(
            "claim_deliveries", channel="webhook", limit=10, due_by=FAR,
            today=AS_OF, language="nb", lease_s=lease_s, lease_token=token, max_attempts=5,
        )  # fmt: skip


def _record(db: Database, name: str, token: str, **params: object) -> list[dict]:
    with db.connection(autocommit=True) as session:
        return session.all(name, ids=[1], tokens=[token], **params)


def test_only_the_current_lease_token_records_an_outcome(db: Database) -> None:
    due_reminders(db, 1, channels=["webhook"])
    make_deliverer(db, {}).expand()
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    assert len(_claim(db, old, lease_s=0)) == 1  # leased, and the lease over at once
    assert len(_claim(db, new)) == 1  # another deliverer claims it
    failed = {"errors": ["late"], "delays": [1.0], "permanent": [False], "max_attempts": 5}
    # The first claim's outcomes come late: nothing changes.
    assert _record(db, "record_deliveries_failed", old, **failed) == []
    assert _record(db, "record_deliveries_sent", old, responses=["HTTP 200"]) == []
    assert _record(db, "release_deliveries", old) == []
    [row] = deliveries(db)
    assert (row["state"], row["attempts"], str(row["lease_token"])) == ("pending", 2, new)
    # The holder's outcome is recorded and ends the lease.
    assert _record(db, "record_deliveries_sent", new, responses=["HTTP 200"]) == [{"id": 1}]
    [row] = deliveries(db)
    assert (row["state"], row["lease_token"]) == ("sent", None)
    # A late failure of the holder itself (recorded twice) changes nothing either.
    assert _record(db, "record_deliveries_failed", new, **failed) == []
    assert deliveries(db)[0]["state"] == "sent"


@pytest.mark.parametrize("final", ["sent", "dead", "cancelled"])
def test_no_state_moves_back_from_a_final_one(db: Database, final: str) -> None:
    due_reminders(db, 1, channels=["webhook"])
    make_deliverer(db, {}).expand()
    with db.connection() as conn:
        conn.execute("UPDATE deliveries SET state = %s", (final,))
    for other in {"pending", "retry", "sent", "dead", "cancelled"} - {final}:
        with (
            pytest.raises(DatabaseError, match="a final state: it cannot become"),
            db.connection() as conn,
        ):
            conn.execute("UPDATE deliveries SET state = %s", (other,))
    assert db_rows(db, "SELECT state FROM deliveries") == [{"state": final}]


def test_a_lease_a_send_could_outlive_is_refused() -> None:
    with pytest.raises(
        ConfigError, match="REMINDERS_DELIVERY_LEASE_S .* REMINDERS_DELIVERY_TIMEOUT_S"
    ):
        DeliveryConfig(timeout_s=10, lease_s=15)
    DeliveryConfig(timeout_s=10, lease_s=16)


def test_the_deliverer_refuses_a_short_lease_from_the_environment(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reminders_pipeline.delivery.deliverer import drain_from_env

    with ReminderReceiver() as receiver:
        monkeypatch.setenv("REMINDERS_WEBHOOK_URL", receiver.url())
        monkeypatch.setenv("REMINDERS_WEBHOOK_SECRET", "whsec_" + "A" * 32)
        monkeypatch.setenv("REMINDERS_DELIVERY_TIMEOUT_S", "60")
        with pytest.raises(ConfigError, match="REMINDERS_DELIVERY_LEASE_S \\(60\\) must be longer"):
            drain_from_env(db)
