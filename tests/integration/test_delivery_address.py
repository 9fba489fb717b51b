"""One recipient: an address that is not exactly one mailbox is refused by `reminders
mentor --email` (nothing stored), and a stored one makes its delivery dead, naming why,
with nothing sent; a real aiosmtpd server sees RCPT for the mentor and no one else."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from click.testing import CliRunner

from reminders_pipeline.cli import cli
from reminders_pipeline.db.connector import Database
from reminders_pipeline.delivery.email import SmtpSender
from tests.helpers.alert_servers import SmtpServer
from tests.helpers.data import db_rows
from tests.helpers.outbox import deliveries, due_reminders, make_deliverer

HOSTILE = [
    "m7@example.org, bcc@evil.example",
    "m4@example.org>, <x@evil.example",
    "Kari <m5@example.org>",
    "m6@example.org\r\nBcc: x@evil.example",
    '"m8,x"@example.org',
    "m9@example.org;x@evil.example",
]


def _mentors(db: Database) -> list[dict]:
    return db_rows(db, "SELECT id, email FROM mentors ORDER BY id")


@pytest.mark.parametrize("value", HOSTILE)
def test_the_cli_refuses_anything_but_one_mailbox_and_stores_nothing(
    db: Database, reminders_env: dict[str, str], value: str
) -> None:
    due_reminders(db, 1, email="kari@example.org")
    before = _mentors(db)
    result = CliRunner().invoke(cli, ["mentor", str(before[0]["id"]), "--email", value])
    assert result.exit_code != 0
    assert "is not one email address" in result.output + str(result.exception)
    assert _mentors(db) == before


def test_the_cli_stores_the_normalised_mailbox(db: Database, reminders_env: dict[str, str]) -> None:
    due_reminders(db, 1, email="kari@example.org")
    [mentor] = _mentors(db)
    result = CliRunner().invoke(cli, ["mentor", str(mentor["id"]), "--email", "Ola@Bücher.Example"])
    assert result.exit_code == 0, result.output
    assert _mentors(db)[0]["email"] == "Ola@bücher.example"


def test_a_stored_list_of_addresses_is_a_dead_delivery_and_reaches_no_one(db: Database) -> None:
    due_reminders(db, len(HOSTILE) + 1, channels=["email"])
    good, *bad = _mentors(db)
    with db.connection() as conn:  # as another application might write them
        conn.execute("UPDATE mentors SET email = 'mentor@example.org' WHERE id = %s", (good["id"],))
        for mentor, value in zip(bad, HOSTILE, strict=True):
            conn.execute("UPDATE mentors SET email = %s WHERE id = %s", (value, mentor["id"]))
    with SmtpServer() as smtp:
        sender = SmtpSender("127.0.0.1", smtp.port, "reminders@example.org", security="none")
        report = make_deliverer(db, {"email": sender}).drain()
        messages = list(smtp.messages)
    assert report.totals() == {"sent": 1, "retry": 0, "dead": len(HOSTILE), "cancelled": 0}
    assert [rcpts for _, rcpts, _ in messages] == [["mentor@example.org"]]
    message: EmailMessage = BytesParser(policy=policy.default).parsebytes(messages[0][2].as_bytes())  # type: ignore[assignment]
    assert [a.addr_spec for a in message["To"].addresses] == ["mentor@example.org"]
    dead = [r for r in deliveries(db) if r["state"] == "dead"]
    assert len(dead) == len(HOSTILE)
    assert all("stored email is refused, nothing sent" in r["last_error"] for r in dead)
    assert any("m7@example.org, bcc@evil.example" in r["last_error"] for r in dead)


def test_a_name_cannot_add_a_recipient(db: Database) -> None:
    due_reminders(db, 1, channels=["email"], email="mentor@example.org")
    with db.connection() as conn:
        conn.execute("UPDATE mentors SET name = 'Kari, bcc@evil.example <x@evil.example>'")
    with SmtpServer() as smtp:
        sender = SmtpSender("127.0.0.1", smtp.port, "reminders@example.org", security="none")
        report = make_deliverer(db, {"email": sender}).drain()
        messages = list(smtp.messages)
    assert report.totals()["sent"] == 1
    assert [rcpts for _, rcpts, _ in messages] == [["mentor@example.org"]]
    message: EmailMessage = BytesParser(policy=policy.default).parsebytes(messages[0][2].as_bytes())  # type: ignore[assignment]
    [to] = message["To"].addresses
    assert (to.display_name, to.addr_spec) == (
        "Kari, bcc@evil.example <x@evil.example>",
        "mentor@example.org",
    )
