"""Real local receivers of reminder deliveries: a webhook receiver that checks the
signature (with the `standardwebhooks` library, as the README's receiver does) and
counts per Idempotency-Key, and an SMTP server with STARTTLS and login."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler  # noqa: E402,I001
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.helpers.alert_servers import _Collector
from tests.helpers.http_server import LoopbackHTTPServer
from tests.helpers.ports import free_port

# A Standard Webhooks secret: whsec_ and the base64 of 32 bytes.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# One answer per request, in order; then `then`. An answer is a status (int),
# (status, {header: value}), "hang" (answer nothing until the client gives up) or
# "close" (drop the connection without answering).
Answer = int | tuple[int, dict[str, str]] | str


def verify(secret: str, headers: Any, body: bytes) -> bool:
    """The receiver's check, with the official library (as the README shows it)."""
    try:
        Webhook(secret).verify(body, dict(headers.items()), json_parse=False)
    except WebhookVerificationError:
        return False
    return True


class ReminderReceiver(LoopbackHTTPServer):
    """An HTTP server on a free loopback port that refuses bad signatures (401)."""

    def __init__(
        self,
        answers: list[Answer] | None = None,
        then: Answer = 200,
        delay_s: float = 0.0,
        secret: str = SECRET,
    ) -> None:
        self.secret = secret
        self.answers = list(answers or [])
        self.then = then
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []  # every request that reached the handler
        self.accepted: Counter[str] = Counter()  # 2xx answers per Idempotency-Key
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no delayed-ACK stall between headers and body

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if len(raw) < length:
                    return  # the sender died mid-request: nothing was delivered
                key = self.headers.get("Idempotency-Key", "")
                ok = verify(receiver.secret, self.headers, raw)
                with receiver.lock:
                    answer = receiver.answers.pop(0) if receiver.answers else receiver.then
                    receiver.requests.append(
                        {"key": key, "body": raw, "answer": answer, "headers": dict(self.headers),
                         "at": time.time()}
                    )  # fmt: skip
                    if not ok:
                        receiver.bad_signatures += 1
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                if not ok:
                    answer = 401
                if answer == "hang":
                    receiver.released.wait(30)
                    return
                if answer == "close":
                    self.close_connection = True
                    return
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                if 200 <= status < 300:
                    with receiver.lock:
                        receiver.accepted[key] += 1
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/reminders"

    def __exit__(self, *exc: object) -> None:
        self.released.set()  # a hanging answer ends first
        super().__exit__(*exc)


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (openssl), and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("the TLS test needs the openssl command (Debian package openssl)")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


class TlsSmtpServer:
    """aiosmtpd with STARTTLS required and LOGIN/PLAIN auth (user/password given)."""

    def __init__(self, cert: Path, key: Path, username: str, password: str) -> None:
        self.collector = _Collector()
        self.port = free_port()
        self.logins: list[str] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any):
            good = (
                isinstance(data, LoginPassword)
                and data.login.decode() == username
                and data.password.decode() == password
            )
            if good:
                self.logins.append(username)
            return AuthResult(success=good, handled=False)

        self.controller = Controller(
            self.collector,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            authenticator=authenticator,
        )

    @property
    def messages(self) -> list:
        return self.collector.messages

    def __enter__(self) -> TlsSmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class SilentServer:
    """Accepts TCP connections and never says a word: a hung SMTP server."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def settled(count: Callable[[], int], quiet_s: float = 0.3, timeout_s: float = 10) -> int:
    """count() once it has stopped changing for quiet_s (requests still in the server's
    threads when their sender was killed)."""
    deadline = time.monotonic() + timeout_s
    last, since = count(), time.monotonic()
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.02)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
    return last


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class PlainSmtpServer:
    """A minimal SMTP server (no TLS, no login) that accepts every message and then answers
    QUIT with an error: a goodbye that fails after the send."""

    def __init__(self) -> None:
        import socketserver

        self.messages: list[bytes] = []
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 plain ESMTP\r\n")
                data: list[bytes] = []
                while line := self.rfile.readline():
                    if data:  # inside DATA
                        if line == b".\r\n":
                            server.messages.append(b"".join(data[1:]))
                            data = []
                            self.wfile.write(b"250 queued\r\n")
                        else:
                            data.append(line)
                        continue
                    verb = line[:4].upper()
                    if verb == b"QUIT":
                        self.wfile.write(b"421 shutting down\r\n")  # not 221
                        return
                    if verb == b"DATA":
                        data = [b""]
                        self.wfile.write(b"354 go ahead\r\n")
                    else:
                        self.wfile.write(b"250 ok\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PlainSmtpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
