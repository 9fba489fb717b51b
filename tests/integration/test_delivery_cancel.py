"""Never after a contact: a delivery whose silence ended before it was sent is cancelled,
whichever way the contact came in (the four registration paths, an admin correction)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reminders_pipeline.admin.tokens import SCOPES, TokenStore
from reminders_pipeline.contacts.activities import Contact, ContactRegistrationService
from reminders_pipeline.contacts.corrections import AssignmentAdminService
from reminders_pipeline.db.connector import Database
from reminders_pipeline.delivery.webhook import WebhookSender
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.data import db_rows
from tests.helpers.delivery_servers import SECRET, ReminderReceiver
from tests.helpers.outbox import AS_OF, LAST_CONTACT, deliveries, due_reminders, make_deliverer

Register = Callable[[Database, int, int], None]


def _direct(db: Database, assignment_id: int, mentor_id: int) -> None:
    ContactRegistrationService(db, ReminderSettings()).register_direct(
        assignment_id, AS_OF, mentor_id=mentor_id
    )


def _proxy(db: Database, assignment_id: int, mentor_id: int) -> None:
    ContactRegistrationService(db, ReminderSettings()).register_proxy(
        assignment_id, AS_OF, registered_by="colleague"
    )


def _coordinator_proxy(db: Database, assignment_id: int, mentor_id: int) -> None:
    ContactRegistrationService(db, ReminderSettings()).register_coordinator_proxy(
        assignment_id, AS_OF, coordinator="coordinator"
    )


def _bulk(db: Database, assignment_id: int, mentor_id: int) -> None:
    ContactRegistrationService(db, ReminderSettings()).register_bulk(
        [Contact(assignment_id, AS_OF)], coordinator="coordinator"
    )


def _admin_correction(db: Database, assignment_id: int, mentor_id: int) -> None:
    if not db_rows(db, "SELECT 1 FROM admin_tokens WHERE name = 'ops'"):
        TokenStore(db).create("ops", SCOPES)
    AssignmentAdminService(db, ReminderSettings()).correct_last_contact_date(
        assignment_id, AS_OF, "met at the office", token_name="ops"
    )


@pytest.mark.parametrize(
    "register", [_direct, _proxy, _coordinator_proxy, _bulk, _admin_correction]
)
def test_a_contact_after_the_reminder_cancels_its_delivery(
    db: Database, register: Register
) -> None:
    contacted, silent = due_reminders(db, 2, channels=["webhook"])
    mentor = db_rows(db, "SELECT mentor_id FROM assignments WHERE id = %s", (contacted,))[0]
    register(db, contacted, mentor["mentor_id"])
    with ReminderReceiver() as receiver:
        report = make_deliverer(db, {"webhook": WebhookSender(receiver.url(), SECRET)}).drain()
    assert report.totals() == {"sent": 1, "retry": 0, "dead": 0, "cancelled": 1}
    assert [
        r["body"]
        for r in receiver.requests
        if f'"assignment_id":{contacted},' in r["body"].decode()
    ] == []
    states = {r["state"]: r for r in deliveries(db)}
    assert states["cancelled"]["last_error"] == (
        f"contact on {AS_OF}, after the reminder's silence began on {LAST_CONTACT}"
    )
    assert states["cancelled"]["attempts"] == 0


def test_a_paused_assignment_cancels_and_a_pending_retry_is_cancelled_too(db: Database) -> None:
    paused, _ = due_reminders(db, 2, channels=["webhook"])
    with ReminderReceiver(then=500) as receiver:
        make_deliverer(db, {"webhook": WebhookSender(receiver.url(), SECRET)}).drain()
    assert {r["state"] for r in deliveries(db)} == {"retry"}
    with db.connection() as conn:
        conn.execute("UPDATE assignments SET status = 'paused' WHERE id = %s", (paused,))
        conn.execute("UPDATE deliveries SET next_attempt_at = now()")
    with ReminderReceiver() as receiver:
        report = make_deliverer(db, {"webhook": WebhookSender(receiver.url(), SECRET)}).drain()
    assert report.totals() == {"sent": 1, "retry": 0, "dead": 0, "cancelled": 1}
    assert {r["last_error"] for r in deliveries(db) if r["state"] == "cancelled"} == {
        "the assignment is paused"
    }


def test_a_correction_backwards_keeps_the_reminder(db: Database) -> None:
    """An earlier date makes the silence longer, not over: the reminder still goes."""
    (assignment,) = due_reminders(db, 1, channels=["webhook"])
    _admin_correction(db, assignment, 0)  # forwards first; then back before the silence
    with db.connection() as conn:
        conn.execute("DELETE FROM deliveries")
        conn.execute("UPDATE delivery_cursor SET last_notification_id = 0")
    AssignmentAdminService(db, ReminderSettings()).correct_last_contact_date(
        assignment, LAST_CONTACT.replace(day=1), "typo", token_name="ops"
    )
    with ReminderReceiver() as receiver:
        report = make_deliverer(db, {"webhook": WebhookSender(receiver.url(), SECRET)}).drain()
    assert report.totals()["sent"] == 1
