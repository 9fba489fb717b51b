"""Email delivery through a real local SMTP server (aiosmtpd): STARTTLS, login, language."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from pathlib import Path

import pytest

from reminders_pipeline.db.connector import Database
from reminders_pipeline.delivery.email import SmtpSender
from reminders_pipeline.delivery.webhook import WebhookSender
from tests.helpers.delivery_servers import (
    SECRET,
    PlainSmtpServer,
    ReminderReceiver,
    SilentServer,
    TlsSmtpServer,
    self_signed_cert,
)
from tests.helpers.outbox import deliveries, due_reminders, make_all_due, make_deliverer

USER, PASSWORD = "reminders", "s3cret"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp(cert: tuple[Path, Path]) -> Iterator[TlsSmtpServer]:
    with TlsSmtpServer(*cert, USER, PASSWORD) as server:
        yield server


def _sender(port: int, cert: tuple[Path, Path], **kw: object) -> SmtpSender:
    return SmtpSender(
        "127.0.0.1",
        port,
        "Oppfølging <reminders@example.org>",
        security="starttls",
        username=USER,
        password=PASSWORD,
        ssl_context=ssl.create_default_context(cafile=str(cert[0])),
        **kw,  # type: ignore[arg-type]
    )


def test_mail_goes_through_starttls_and_login_in_the_mentors_language(
    db: Database, smtp: TlsSmtpServer, cert: tuple[Path, Path]
) -> None:
    (nb_assignment,) = due_reminders(db, 1, email="nb{n}@example.org")  # organisation: nb
    (en_assignment,) = due_reminders(db, 1, email="en{n}@example.org", language="en")
    deliverer = make_deliverer(db, {"email": _sender(smtp.port, cert)}, org_channels=["email"])
    report = deliverer.drain()
    assert report.totals() == {"sent": 2, "retry": 0, "dead": 0, "cancelled": 0}
    assert smtp.logins == [USER, USER]
    by_rcpt = {rcpts[0]: _modern(message) for _, rcpts, message in smtp.messages}
    assert set(by_rcpt) == {"nb1@example.org", "en1@example.org"}
    nb, en = by_rcpt["nb1@example.org"], by_rcpt["en1@example.org"]
    assert nb["Subject"] == f"Påminnelse: ta kontakt med Kari {_mentor(db, nb_assignment)}"
    assert en["Subject"] == f"Reminder: get in touch with Kari {_mentor(db, en_assignment)}"
    assert "det har gått 12 dager siden siste kontakt" in nb.get_content()
    assert "it has been 12 days since the last contact" in en.get_content()
    assert nb["From"] == "Oppfølging <reminders@example.org>"
    rows = deliveries(db)
    assert {r["provider_response"] for r in rows} == {
        f"<reminder-{r['notification_id']}-email@reminders>" for r in rows
    }


def test_a_mentor_without_email_is_a_recorded_dead_delivery(
    db: Database, smtp: TlsSmtpServer, cert: tuple[Path, Path]
) -> None:
    due_reminders(db, 1, email=None, channels=["email"])
    report = make_deliverer(db, {"email": _sender(smtp.port, cert)}).drain()
    assert report.totals()["dead"] == 1
    (row,) = deliveries(db)
    assert row["state"] == "dead" and row["attempts"] == 1
    assert row["last_error"].endswith("has no email address")
    assert smtp.messages == []


def test_wrong_password_is_refused_and_retried(
    db: Database, smtp: TlsSmtpServer, cert: tuple[Path, Path]
) -> None:
    due_reminders(db, 1, channels=["email"])
    sender = _sender(smtp.port, cert)
    sender.password = "wrong"
    report = make_deliverer(db, {"email": sender}).drain()
    # A refused login is the configuration's fault, not the reminder's: retried.
    assert report.totals()["retry"] == 1
    assert deliveries(db)[0]["last_error"].startswith("SMTP login refused: 535")
    assert smtp.messages == []


def test_a_hung_smtp_server_does_not_slow_the_webhooks(
    db: Database, cert: tuple[Path, Path]
) -> None:
    due_reminders(db, 4, channels=["email", "webhook"])
    with SilentServer() as silent, ReminderReceiver() as receiver:
        senders = {
            "email": _sender(silent.port, cert),
            "webhook": WebhookSender(receiver.url(), SECRET),
        }
        started = time.monotonic()
        report = make_deliverer(db, senders, timeout_s=3.0, concurrency=4).drain()
        elapsed = time.monotonic() - started
    assert report.channels["webhook"]["sent"] == 4
    assert report.channels["email"]["retry"] == 4
    # The SMTP lane waits out its 3 s timeouts; the webhooks did not wait for them.
    assert 2.9 < elapsed < 10
    rows = {r["channel"]: r for r in deliveries(db)}
    assert "timed out" in rows["email"]["last_error"]
    webhook_done = max(r["finished_at"] for r in deliveries(db) if r["channel"] == "webhook")
    first_created = min(r["created_at"] for r in deliveries(db))
    assert (webhook_done - first_created).total_seconds() < 2


def _modern(message: Message) -> EmailMessage:
    return message_from_bytes(message.as_bytes(), policy=policy.default)  # type: ignore[return-value]


def _mentor(db: Database, assignment_id: int) -> int:
    from tests.helpers.data import db_rows

    return db_rows(db, "SELECT mentor_id FROM assignments WHERE id = %s", (assignment_id,))[0][
        "mentor_id"
    ]


def _plain(port: int) -> dict[str, SmtpSender]:
    sender = SmtpSender("127.0.0.1", port, "reminders@example.org", security="none")
    return {"email": sender}


def test_a_failed_goodbye_after_an_accepted_message_is_a_sent_delivery(db: Database) -> None:
    due_reminders(db, 1, channels=["email"])
    with PlainSmtpServer() as server:
        first = make_deliverer(db, _plain(server.port)).drain()
        make_all_due(db)
        again = make_deliverer(db, _plain(server.port)).drain()
    assert first.totals()["sent"] == 1 and again.totals()["sent"] == 0
    assert len(server.messages) == 1
    assert deliveries(db)[0]["state"] == "sent"


def test_a_line_break_in_a_mentor_name_is_a_dead_delivery_naming_the_field(db: Database) -> None:
    due_reminders(db, 1, channels=["email"])
    with db.connection() as conn:
        conn.execute("UPDATE mentors SET name = E'Kari\\r\\nBcc: everyone@example.org'")
    with PlainSmtpServer() as server:
        report = make_deliverer(db, _plain(server.port)).drain()
    assert report.totals()["dead"] == 1
    assert server.messages == []
    [row] = deliveries(db)
    assert row["state"] == "dead"
    assert "name or email cannot be the To header" in row["last_error"]
