"""Reminders made due and created for delivery tests, and a deliverer to drain them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from reminders_pipeline.core.dispatch import ReminderDispatchService
from reminders_pipeline.db.connector import Database
from reminders_pipeline.delivery.config import DeliveryConfig
from reminders_pipeline.delivery.deliverer import Deliverer
from reminders_pipeline.delivery.reminder import Sender
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.data import db_rows

AS_OF = date(2026, 3, 20)
LAST_CONTACT = AS_OF - timedelta(days=12)


def due_reminders(
    db: Database,
    count: int,
    *,
    channels: list[str] | None = None,
    email: str | None = "mentor{n}@example.org",
    language: str | None = None,
) -> list[int]:
    """`count` mentors with one due assignment each, their reminders created; assignment ids."""
    with db.connection() as conn:
        rows = conn.execute(
            """
            WITH m AS (
                INSERT INTO mentors (name, email, channels, language)
                SELECT 'Mentor ' || g, replace(%(email)s, '{n}', g::text), %(channels)s,
                       %(language)s
                FROM generate_series(1, %(count)s) AS g
                RETURNING id
            )
            INSERT INTO assignments (mentor_id, mentee_name, started_on, last_contact_date)
            SELECT id, 'Kari ' || id, %(last)s::date - 30, %(last)s FROM m
            RETURNING id
            """,
            {"email": email, "channels": channels, "language": language, "count": count,
             "last": LAST_CONTACT},
        ).fetchall()  # fmt: skip
    ReminderDispatchService(db, ReminderSettings()).dispatch(AS_OF, None)
    return sorted(r["id"] for r in rows)


def make_deliverer(db: Database, senders: dict[str, Sender], **config: Any) -> Deliverer:
    values: dict[str, Any] = {
        "org_channels": ["in_app"],
        "timeout_s": 2.0,
        "concurrency": 4,
        "retry_base_s": 1.0,
        "max_attempts": 3,
        "max_runtime_s": 60.0,
    }
    values.update(config)
    return Deliverer(db, DeliveryConfig(**values), senders, lambda: AS_OF)


def deliveries(db: Database) -> list[dict[str, Any]]:
    return db_rows(db, "SELECT * FROM deliveries ORDER BY id")


def make_all_due(db: Database) -> None:
    """As if the retry delays had passed."""
    with db.connection() as conn:
        conn.execute(
            "UPDATE deliveries SET next_attempt_at = now() WHERE state IN ('pending', 'retry')"
        )
