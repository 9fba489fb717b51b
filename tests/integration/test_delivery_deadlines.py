"""Hard deadlines: a send ends within REMINDERS_DELIVERY_TIMEOUT_S + SEND_MARGIN_S whatever
the provider does (trickled status line, headers, body or SMTP banner, a stall after
DATA, silence). For each: the drain's wall time, the final state, the requests per key."""

from __future__ import annotations

import socket
import time

import pytest

from reminders_pipeline.db.connector import Database
from reminders_pipeline.delivery.email import SmtpSender
from reminders_pipeline.delivery.reminder import Sender
from reminders_pipeline.delivery.webhook import WebhookSender
from reminders_pipeline.settings.delivery_lease import SEND_MARGIN_S
from tests.helpers.delivery_servers import SECRET
from tests.helpers.hostile_peers import HostilePeer, elapsed, read_http_request, smtp_until
from tests.helpers.outbox import deliveries, due_reminders, make_all_due, make_deliverer

TIMEOUT_S = 2.0
# The drain's own work (expand, claim, record) on top of the send's bound.
BOUND_S = TIMEOUT_S + SEND_MARGIN_S + 1.0
OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 40\r\n\r\n"


def _trickled_status(conn: socket.socket, peer: HostilePeer) -> None:
    read_http_request(conn, peer)
    peer.trickle(conn, OK_HEAD)


def _trickled_headers(conn: socket.socket, peer: HostilePeer) -> None:
    read_http_request(conn, peer)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    peer.trickle(conn, OK_HEAD.split(b"\r\n", 1)[1])


def _trickled_body(conn: socket.socket, peer: HostilePeer) -> None:
    read_http_request(conn, peer)
    conn.sendall(OK_HEAD)
    peer.trickle(conn, b"x" * 40)


def _silent_after_request(conn: socket.socket, peer: HostilePeer) -> None:
    read_http_request(conn, peer)
    peer.stop.wait(60)


def _ok_after_the_deadline(conn: socket.socket, peer: HostilePeer) -> None:
    read_http_request(conn, peer)
    if not peer.stop.wait(TIMEOUT_S + 1):
        conn.sendall(OK_HEAD + b"x" * 40)


def _silent(conn: socket.socket, peer: HostilePeer) -> None:
    peer.stop.wait(60)  # accepts, reads nothing, says nothing (also a stalled TLS handshake)


def _webhook(peer: HostilePeer) -> dict[str, Sender]:
    return {"webhook": WebhookSender(peer.url(), SECRET, concurrency=2)}


def _email(peer: HostilePeer, security: str = "none") -> dict[str, Sender]:
    return {"email": SmtpSender("127.0.0.1", peer.port, "r@example.org", security=security)}


def _drain_once(db: Database, senders: dict[str, Sender]) -> float:
    deliverer = make_deliverer(db, senders, timeout_s=TIMEOUT_S)
    try:
        return elapsed(deliverer.drain)
    finally:
        deliverer.close()


@pytest.mark.parametrize(
    "script",
    [_trickled_status, _trickled_headers, _trickled_body, _silent_after_request,
     _ok_after_the_deadline, _silent],
    ids=["status-line", "headers", "body", "silent-after-request", "200-after-deadline",
         "silent-accept"],
)  # fmt: skip
def test_a_webhook_send_ends_by_its_deadline(db: Database, script) -> None:
    due_reminders(db, 1, channels=["webhook"])
    with HostilePeer(script) as peer:
        took = _drain_once(db, _webhook(peer))
        keys = dict(peer.keys)
    assert took < BOUND_S, f"the drain took {took:.1f}s"
    [row] = deliveries(db)
    assert (row["state"], row["attempts"]) == ("retry", 1)
    assert "timed out" in row["last_error"]
    assert keys == ({} if script is _silent else {"reminder-1-webhook": 1})


def test_a_redirect_is_not_followed(db: Database) -> None:
    due_reminders(db, 1, channels=["webhook"])

    def redirect(conn: socket.socket, peer: HostilePeer) -> None:
        read_http_request(conn, peer)
        location = f"http://127.0.0.1:{peer.port}/elsewhere"
        conn.sendall(
            f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )

    with HostilePeer(redirect) as peer:
        _drain_once(db, _webhook(peer))
        assert dict(peer.keys) == {"reminder-1-webhook": 1}
    [row] = deliveries(db)
    assert row["state"] == "retry" and "307" in row["last_error"]


@pytest.mark.parametrize(
    ("stall_at", "messages"),
    [(b"", 0), (b"EHLO", 0), (b"RCPT", 0), (b"DATA-END", 1)],
    ids=["banner-never", "after-ehlo", "at-rcpt", "after-data"],
)
def test_an_smtp_send_ends_by_its_deadline(db: Database, stall_at: bytes, messages: int) -> None:
    due_reminders(db, 1, channels=["email"])

    def script(conn: socket.socket, peer: HostilePeer) -> None:
        if stall_at:
            smtp_until(conn, peer, stall_at)
        else:
            peer.stop.wait(60)

    with HostilePeer(script) as peer:
        took = _drain_once(db, _email(peer))
        seen = peer.messages
    assert took < BOUND_S, f"the drain took {took:.1f}s"
    [row] = deliveries(db)
    assert (row["state"], row["attempts"]) == ("retry", 1)
    assert "timed out" in row["last_error"]
    assert seen == messages


@pytest.mark.parametrize("security", ["none", "tls"])
def test_a_trickled_smtp_banner_or_tls_handshake_ends_by_the_deadline(
    db: Database, security: str
) -> None:
    due_reminders(db, 1, channels=["email"])

    def script(conn: socket.socket, peer: HostilePeer) -> None:
        # Plain: the banner a byte a second. TLS: bytes of a server hello that never ends.
        peer.trickle(conn, b"220 slow ESMTP ready\r\n" if security == "none" else b"\x16" * 30)

    with HostilePeer(script) as peer:
        started = time.monotonic()
        _drain_once(db, _email(peer, security))
        took = time.monotonic() - started
    assert took < BOUND_S, f"the drain took {took:.1f}s"
    [row] = deliveries(db)
    assert row["state"] == "retry" and "timed out" in row["last_error"]


def test_a_stalled_tls_handshake_ends_by_the_deadline(db: Database) -> None:
    due_reminders(db, 1, channels=["webhook"])
    with HostilePeer(_silent) as peer:  # takes the ClientHello, never answers it
        sender = WebhookSender(f"https://127.0.0.1:{peer.port}/reminders", SECRET)
        took = _drain_once(db, {"webhook": sender})
    assert took < BOUND_S, f"the drain took {took:.1f}s"
    [row] = deliveries(db)
    assert row["state"] == "retry" and "timed out" in row["last_error"]


def test_a_reset_mid_answer_is_a_retry_at_once(db: Database) -> None:
    due_reminders(db, 1, channels=["webhook"])

    def reset(conn: socket.socket, peer: HostilePeer) -> None:
        read_http_request(conn, peer)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
        # SO_LINGER 0: close sends RST, not FIN
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()

    with HostilePeer(reset) as peer:
        took = _drain_once(db, _webhook(peer))
        keys = dict(peer.keys)
    assert took < TIMEOUT_S, f"the drain took {took:.1f}s"
    [row] = deliveries(db)
    assert row["state"] == "retry" and "timed out" not in row["last_error"]
    assert keys == {"reminder-1-webhook": 1}


def test_an_smtp_4xx_then_2xx_is_one_retry_then_sent(db: Database) -> None:
    due_reminders(db, 1, channels=["email"])
    answers = iter([b"451 try again later\r\n", b"250 queued\r\n"])

    def script(conn: socket.socket, peer: HostilePeer) -> None:
        conn.sendall(b"220 moody ESMTP\r\n")
        file = conn.makefile("rb")
        in_data = False
        while line := file.readline():
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    peer.messages += 1
                    conn.sendall(next(answers))
                continue
            verb = line[:4].upper()
            if verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            in_data = verb == b"DATA"
            conn.sendall(b"354 go ahead\r\n" if in_data else b"250 ok\r\n")

    with HostilePeer(script) as peer:
        _drain_once(db, _email(peer))
        first = deliveries(db)[0]
        make_all_due(db)
        _drain_once(db, _email(peer))
        seen = peer.messages
    assert (first["state"], first["last_error"]) == ("retry", "SMTP 451 try again later")
    [row] = deliveries(db)
    assert (row["state"], row["attempts"]) == ("sent", 2)
    assert seen == 2


@pytest.mark.parametrize("channel", ["webhook", "email"])
def test_slow_name_resolution_ends_by_the_deadline(
    db: Database, monkeypatch: pytest.MonkeyPatch, channel: str
) -> None:
    """A resolver that answers after 12 s (faked in-process: no DNS server is needed to
    show that the send does not wait for it)."""
    real = socket.getaddrinfo

    def slow(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if host in ("slow-dns.invalid", b"slow-dns.invalid"):
            time.sleep(12)
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    due_reminders(db, 1, channels=[channel])
    sender: Sender = (
        WebhookSender("http://slow-dns.invalid:8080/reminders", SECRET)
        if channel == "webhook"
        else SmtpSender("slow-dns.invalid", 2525, "r@example.org", security="none")
    )
    took = _drain_once(db, {channel: sender})
    assert took < BOUND_S, f"the drain took {took:.1f}s"
    [row] = deliveries(db)
    assert row["state"] == "retry" and "timed out" in row["last_error"]
