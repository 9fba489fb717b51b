"""The reported case, as a new user meets it: a webhook receiver that answers a status
line and then trickles its headers a byte a second held `reminders deliver` for 92 s
with REMINDERS_DELIVERY_TIMEOUT_S=5. Now the command ends within the deadline plus its
margin (and its own start-up), the delivery waits for a retry, and the receiver saw one
request."""

from __future__ import annotations

import socket
import time

import pytest

from reminders_pipeline.db.connector import Database
from reminders_pipeline.settings.delivery_lease import SEND_MARGIN_S
from tests.helpers.data import db_rows
from tests.helpers.delivery_servers import SECRET
from tests.helpers.hostile_peers import HostilePeer, read_http_request
from tests.helpers.outbox import due_reminders
from tests.helpers.runs import RemindersCli

pytestmark = pytest.mark.acceptance

TIMEOUT_S = 5
# What the command needs besides the send: Python's start, migrations check, expansion.
START_UP_S = 15


def _trickled_headers(conn: socket.socket, peer: HostilePeer) -> None:
    read_http_request(conn, peer)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    peer.trickle(conn, b"Content-Type: text/plain\r\nX-Padding: " + b"x" * 80 + b"\r\n\r\n")


def test_deliver_ends_by_the_deadline_against_a_receiver_trickling_its_headers(
    db: Database, reminders_cli: RemindersCli
) -> None:
    due_reminders(db, 1, channels=["webhook"])
    with HostilePeer(_trickled_headers) as peer:
        env = {
            "REMINDERS_WEBHOOK_URL": peer.url(),
            "REMINDERS_WEBHOOK_SECRET": SECRET,
            "REMINDERS_DELIVERY_TIMEOUT_S": str(TIMEOUT_S),
        }
        started = time.monotonic()
        done = reminders_cli("deliver", "--json", env=env, timeout=90)
        took = time.monotonic() - started
        keys = dict(peer.keys)
    assert done.returncode == 0, done.describe()
    assert took < TIMEOUT_S + SEND_MARGIN_S + START_UP_S, f"`reminders deliver` took {took:.1f}s"
    assert done.json()["retry"] == 1
    assert keys == {"reminder-1-webhook": 1}
    [row] = db_rows(db, "SELECT state, last_error FROM deliveries")
    assert row["state"] == "retry" and "timed out after 5s" in row["last_error"]
