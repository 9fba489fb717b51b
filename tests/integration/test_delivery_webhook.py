"""Webhook delivery to a real local HTTP server: signed, keyed, retried, then dead."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from reminders_pipeline.core.dispatch import ReminderDispatchService
from reminders_pipeline.db.connector import Database
from reminders_pipeline.delivery.webhook import WebhookSender
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.data import db_rows
from tests.helpers.delivery_servers import SECRET, ReminderReceiver
from tests.helpers.outbox import (
    AS_OF,
    deliveries,
    due_reminders,
    make_all_due,
    make_deliverer,
)
from tests.helpers.ports import free_port


def _webhook(url: str) -> dict[str, WebhookSender]:
    return {"webhook": WebhookSender(url, SECRET, concurrency=4)}


def test_each_reminder_is_posted_once_signed_with_its_idempotency_key(db: Database) -> None:
    assignments = due_reminders(db, 3)
    with ReminderReceiver() as receiver:
        deliverer = make_deliverer(db, _webhook(receiver.url()), org_channels=["in_app", "webhook"])
        report = deliverer.drain()
        again = deliverer.drain()
        deliverer.close()
    assert report.totals() == {"sent": 3, "retry": 0, "dead": 0, "cancelled": 0}
    assert again.totals() == {"sent": 0, "retry": 0, "dead": 0, "cancelled": 0}
    assert receiver.bad_signatures == 0
    keys = {f"reminder-{n['id']}-webhook" for n in db_rows(db, "SELECT id FROM notifications")}
    assert dict(receiver.accepted) == dict.fromkeys(keys, 1)
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    assert sorted(b["assignment_id"] for b in bodies) == assignments
    assert {b["days_since_contact"] for b in bodies} == {12}
    assert {b["idempotency_key"] for b in bodies} == keys
    rows = deliveries(db)
    assert {(r["state"], r["attempts"]) for r in rows} == {("sent", 1)}
    assert all(r["provider_response"].startswith("HTTP 200") for r in rows)


def test_in_app_only_creates_no_delivery(db: Database) -> None:
    due_reminders(db, 5)
    report = make_deliverer(db, {}).drain()
    assert report.expanded == 0
    assert deliveries(db) == []
    cursor = db_rows(db, "SELECT last_notification_id FROM delivery_cursor")[0]
    assert (
        cursor["last_notification_id"] == db_rows(db, "SELECT max(id) FROM notifications")[0]["max"]
    )


def test_a_mentors_own_channels_override_the_organisations(db: Database) -> None:
    due_reminders(db, 2)  # organisation default: in-app only
    due_reminders(db, 1, channels=["webhook"])
    with ReminderReceiver() as receiver:
        report = make_deliverer(db, _webhook(receiver.url())).drain()
    assert report.totals()["sent"] == 1
    assert len(receiver.requests) == 1


def test_nothing_is_expanded_while_a_run_holds_the_run_lock(db: Database, db_url: str) -> None:
    from reminders_pipeline.db.lock_keys import LOCK_KEY

    due_reminders(db, 2, channels=["webhook"])
    with db.connection(autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEY)
        with ReminderReceiver() as receiver:
            report = make_deliverer(db, _webhook(receiver.url())).drain()
        assert report.expanded == 0 and receiver.requests == []
    with ReminderReceiver() as receiver:
        report = make_deliverer(db, _webhook(receiver.url())).drain()
    assert report.expanded == 2 and report.totals()["sent"] == 2


def test_errors_are_retried_with_backoff_then_dead_one_request_per_attempt(db: Database) -> None:
    due_reminders(db, 1, channels=["webhook"])
    answers = [500, (429, {"Retry-After": "120"}), "hang"]
    with ReminderReceiver(answers=answers, then=503) as receiver:
        deliverer = make_deliverer(db, _webhook(receiver.url()), timeout_s=1.0, max_attempts=4)
        outcomes = []
        for _ in range(4):
            before = time.time()
            outcomes.append(deliverer.drain().totals())
            (row,) = deliveries(db)
            if len(outcomes) == 2:  # the 429's Retry-After wins over the 1 s backoff
                wait = row["next_attempt_at"].timestamp() - before
                assert 110 < wait < 130, wait
            make_all_due(db)
        deliverer.close()
    assert [o["retry"] for o in outcomes] == [1, 1, 1, 0]
    assert outcomes[-1]["dead"] == 1
    (row,) = deliveries(db)
    assert row["state"] == "dead" and row["attempts"] == 4
    assert "503" in row["last_error"]
    # One request per attempt, none accepted, all with the same key.
    assert len(receiver.requests) == 4
    assert {r["key"] for r in receiver.requests} == {row_key(db)}
    assert sum(receiver.accepted.values()) == 0


def test_a_refused_connection_is_retried_and_then_delivered(db: Database) -> None:
    due_reminders(db, 2, channels=["webhook"])
    closed = f"http://127.0.0.1:{free_port()}/reminders"  # nobody listens there
    report = make_deliverer(db, _webhook(closed)).drain()
    assert report.totals()["retry"] == 2
    assert {r["last_error"].split(":")[0] for r in deliveries(db)} == {"webhook"}
    make_all_due(db)
    with ReminderReceiver() as receiver:
        report = make_deliverer(db, _webhook(receiver.url())).drain()
    assert report.totals()["sent"] == 2
    assert sorted(receiver.accepted.values()) == [1, 1]


def test_a_client_error_is_dead_at_once(db: Database) -> None:
    due_reminders(db, 1, channels=["webhook"])
    with ReminderReceiver(then=422) as receiver:
        report = make_deliverer(db, _webhook(receiver.url())).drain()
    assert report.totals()["dead"] == 1
    assert deliveries(db)[0]["last_error"].startswith("webhook answered HTTP 422")


def test_a_delivery_is_created_once_however_often_expanded(db: Database) -> None:
    due_reminders(db, 2, channels=["webhook", "in_app"])
    # A second day's run creates nothing new for the same silence.
    ReminderDispatchService(db, ReminderSettings()).dispatch(AS_OF + timedelta(days=1), None)
    with db.connection() as conn:
        conn.execute("UPDATE delivery_cursor SET last_notification_id = 0")
    deliverer = make_deliverer(db, {})
    deliverer.expand()
    with db.connection() as conn:
        conn.execute("UPDATE delivery_cursor SET last_notification_id = 0")
    deliverer.expand()
    assert len(deliveries(db)) == 2


def row_key(db: Database) -> str:
    (row,) = deliveries(db)
    return f"reminder-{row['notification_id']}-webhook"


def test_reminders_after_a_seed_reset_are_delivered(db: Database) -> None:
    """The reset starts notifications ids at 1 again; the expansion cursor follows."""
    from reminders_pipeline.db.seed import seed

    due_reminders(db, 3, channels=["webhook"])
    make_deliverer(db, {}).expand()
    seed(db, assignments=0, due_fraction=0, today=AS_OF, default_interval_days=10, reset=True)
    due_reminders(db, 1, channels=["webhook"])
    with ReminderReceiver() as receiver:
        report = make_deliverer(db, _webhook(receiver.url())).drain()
    assert report.totals()["sent"] == 1


def test_two_deliverers_at_once_never_send_the_same_delivery(db: Database) -> None:
    import threading

    due_reminders(db, 60, channels=["webhook"])
    make_deliverer(db, {}).expand()
    with ReminderReceiver(delay_s=0.03) as receiver:
        deliverers = [
            make_deliverer(db, _webhook(receiver.url()), batch_size=10, concurrency=2)
            for _ in range(2)
        ]
        reports: list = []
        threads = [
            threading.Thread(target=lambda d=d: reports.append(d.drain())) for d in deliverers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(receiver.accepted.values()) == [1] * 60
    assert all(r.totals()["sent"] > 0 for r in reports), "both took a share"
    assert sum(r.totals()["sent"] for r in reports) == 60


def test_a_slow_provider_cannot_hold_a_drain_past_its_max_runtime(db: Database) -> None:
    due_reminders(db, 12, channels=["webhook"])
    with ReminderReceiver(delay_s=0.4) as receiver:
        deliverer = make_deliverer(
            db, _webhook(receiver.url()), concurrency=1, batch_size=4, max_runtime_s=1.0
        )
        started = time.monotonic()
        report = deliverer.drain()
        elapsed = time.monotonic() - started
    assert elapsed < 2.5, elapsed
    sent = report.totals()["sent"]
    assert 1 <= sent < 12
    # What was not tried stays due, without an attempt counted against it.
    waiting = [r for r in deliveries(db) if r["state"] == "pending"]
    assert len(waiting) == 12 - sent and {r["attempts"] for r in waiting} == {0}


def _whsec(seed: bytes) -> str:
    import base64

    return "whsec_" + base64.b64encode(seed * 32).decode()


def test_every_delivery_verifies_with_the_standardwebhooks_library_and_rotation_works(
    db: Database,
) -> None:
    from standardwebhooks.webhooks import Webhook

    old, new = _whsec(b"o"), _whsec(b"n")
    # While rotating the deliverer signs with both; a receiver still on the old secret
    # and one already on the new one both accept every delivery.
    with ReminderReceiver(secret=old) as on_old, ReminderReceiver(secret=new) as on_new:
        for receiver in (on_old, on_new):
            due_reminders(db, 2, channels=["webhook"])
            sender = WebhookSender(receiver.url(), [old, new], concurrency=2)
            assert make_deliverer(db, {"webhook": sender}).drain().totals()["sent"] == 2
            sender.close()
    for receiver in (on_old, on_new):
        assert receiver.bad_signatures == 0
        assert len(receiver.accepted) == 2
        for request in receiver.requests:
            headers = request["headers"]
            assert headers["webhook-id"] == headers["Idempotency-Key"] == request["key"]
            assert len(headers["webhook-signature"].split(" ")) == 2
            assert Webhook(receiver.secret).verify(request["body"], headers)["idempotency_key"]
    # Once the old secret is dropped, a receiver on it refuses (401): retried, not lost.
    due_reminders(db, 2, channels=["webhook"])
    with ReminderReceiver(secret=old) as stale:
        sender = WebhookSender(stale.url(), [new], concurrency=2)
        report = make_deliverer(db, {"webhook": sender}).drain()
        sender.close()
    assert stale.bad_signatures == 2 and report.totals()["dead"] == 2  # 401: refused
