"""One claimed delivery as the senders see it, and what a failed send says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from reminders_pipeline.db.connector import record_from_row


@dataclass(frozen=True)
class Reminder:
    """A delivery claimed for sending, with the reminder and the mentor it is for."""

    delivery_id: int
    notification_id: int
    channel: str
    idempotency_key: str
    kind: str
    assignment_id: int
    mentor_id: int
    mentor_name: str
    mentor_email: str | None
    mentee_name: str
    language: str
    last_contact_date: date
    days_since_contact: int
    due_on: date
    silence_started_on: date
    sequence: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Reminder:
        return record_from_row(cls, row, delivery_id=row["id"])

    def as_json(self) -> dict[str, Any]:
        """The webhook's body: the reminder's fields."""
        return {
            "reminder_id": self.notification_id,
            "idempotency_key": self.idempotency_key,
            "kind": self.kind,
            "assignment_id": self.assignment_id,
            "mentor_id": self.mentor_id,
            "mentor_name": self.mentor_name,
            "mentee_name": self.mentee_name,
            "language": self.language,
            "last_contact_date": self.last_contact_date.isoformat(),
            "days_since_contact": self.days_since_contact,
            "due_on": self.due_on.isoformat(),
            "silence_started_on": self.silence_started_on.isoformat(),
            "sequence": self.sequence,
        }


class SendFailed(Exception):
    """A send did not go through. Permanent: retrying cannot help (the delivery is dead)."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after_s = retry_after_s


class Sender(Protocol):
    """A channel that leaves the database. `send` returns the provider's answer to keep."""

    channel: str

    def send(self, reminder: Reminder, timeout_s: float) -> str: ...

    def close(self) -> None: ...
