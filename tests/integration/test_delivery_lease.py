"""The lease: no transaction is open during a send, each outcome is recorded on its own,
a delivery whose outcome is never recorded ends dead, a contact stops the sends that have
not started, and a trickling receiver cannot stretch a send past its deadline."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from reminders_pipeline.contacts.activities import ContactRegistrationService
from reminders_pipeline.db.connector import Database
from reminders_pipeline.delivery.webhook import WebhookSender
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.data import db_rows
from tests.helpers.delivery_servers import SECRET, ReminderReceiver
from tests.helpers.http_server import LoopbackHTTPServer
from tests.helpers.outbox import AS_OF, deliveries, due_reminders, make_deliverer


class AnsweringServer(LoopbackHTTPServer):
    """A loopback HTTP server whose answer a test writes itself (raw bytes, pacing)."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.keys: Counter[str] = Counter()
        keys = self.keys

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers["Content-Length"]))
                keys[self.headers["Idempotency-Key"]] += 1
                answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/reminders"


def _webhook(url: str) -> dict[str, WebhookSender]:
    return {"webhook": WebhookSender(url, SECRET, concurrency=4)}


def test_an_answer_with_nul_is_recorded_and_nothing_is_sent_twice(db: Database) -> None:
    due_reminders(db, 5, channels=["webhook"])

    def answer(handler: BaseHTTPRequestHandler) -> None:
        body = b"ok\x00id" if handler.headers["Idempotency-Key"] == "reminder-1-webhook" else b"ok"
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with AnsweringServer(answer) as server:
        reports = [make_deliverer(db, _webhook(server.url())).drain() for _ in range(2)]
    assert [r.totals()["sent"] for r in reports] == [5, 0]
    assert set(server.keys.values()) == {1}
    rows = deliveries(db)
    assert [(r["state"], r["attempts"]) for r in rows] == [("sent", 1)] * 5
    assert rows[0]["provider_response"] == "HTTP 200 okid"


def test_no_transaction_stays_open_while_sending(db: Database) -> None:
    due_reminders(db, 4, channels=["webhook"])
    with db.connection(autocommit=True) as conn:
        dbname = db_rows(db, "SELECT current_database() AS d")[0]["d"]
        conn.execute(f'ALTER DATABASE "{dbname}" SET idle_in_transaction_session_timeout = 300')
    with ReminderReceiver(delay_s=0.5) as receiver:
        for _ in range(2):
            make_deliverer(db, _webhook(receiver.url()), concurrency=2).drain()
    assert dict(receiver.accepted) == {f"reminder-{n}-webhook": 1 for n in range(1, 5)}
    assert {r["state"] for r in deliveries(db)} == {"sent"}


def test_a_delivery_whose_outcomes_were_never_recorded_ends_dead(db: Database) -> None:
    due_reminders(db, 2, channels=["webhook"])
    make_deliverer(db, {}).expand()
    # As a deliverer dying after each send leaves it: every attempt leased, none recorded,
    # and the last lease over.
    with db.connection() as conn:
        conn.execute("UPDATE deliveries SET attempts = 3, next_attempt_at = now() WHERE id = 1")
    with ReminderReceiver() as receiver:
        report = make_deliverer(db, _webhook(receiver.url()), max_attempts=3).drain()
    assert report.totals() == {"sent": 1, "retry": 0, "dead": 1, "cancelled": 0}
    assert list(receiver.accepted) == ["reminder-2-webhook"]
    dead = deliveries(db)[0]
    assert (dead["state"], dead["attempts"]) == ("dead", 3)
    assert "no outcome recorded" in dead["last_error"]


def test_a_contact_during_a_drain_stops_the_sends_not_yet_started(db: Database) -> None:
    ids = due_reminders(db, 6, channels=["webhook"])
    last = ids[-1]
    mentor = db_rows(db, "SELECT mentor_id FROM assignments WHERE id = %s", (last,))[0]
    with ReminderReceiver(delay_s=0.3) as receiver:

        def contact() -> None:
            while not receiver.requests:
                time.sleep(0.01)
            ContactRegistrationService(db, ReminderSettings()).register_direct(
                last, AS_OF, mentor_id=mentor["mentor_id"]
            )

        thread = threading.Thread(target=contact)
        thread.start()
        report = make_deliverer(db, _webhook(receiver.url()), concurrency=1, batch_size=6).drain()
        thread.join()
    assert report.totals() == {"sent": 5, "retry": 0, "dead": 0, "cancelled": 1}
    assert not [r for r in receiver.requests if f'"assignment_id":{last},' in r["body"].decode()]


def test_a_trickling_receiver_cannot_stretch_a_send_past_its_deadline(db: Database) -> None:
    due_reminders(db, 1, channels=["webhook"])

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "20")
        handler.end_headers()
        for _ in range(20):  # one byte at a time, each well inside the read timeout
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.2)

    with AnsweringServer(answer) as server:
        deliverer = make_deliverer(db, _webhook(server.url()), timeout_s=1.0, max_runtime_s=1.0)
        started = time.monotonic()
        report = deliverer.drain()
        elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"the drain took {elapsed:.1f}s"
    assert report.totals()["retry"] == 1
    assert "timed out" in deliveries(db)[0]["last_error"]


def test_expanding_waits_for_another_deliverers_expansion_instead_of_skipping(
    db: Database,
) -> None:
    due_reminders(db, 2, channels=["webhook"])
    with db.connection() as conn:  # another deliverer inside an expansion batch
        conn.execute("SELECT * FROM delivery_cursor FOR UPDATE")
        timer = threading.Timer(0.5, conn.commit)
        timer.start()
        created = make_deliverer(db, {}).expand()
        timer.join()
    assert created == 2
