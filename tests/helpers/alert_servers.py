"""Real local servers that alerts are delivered to in tests: HTTP (webhooks) and SMTP."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import Any

from aiosmtpd.controller import Controller

from tests.helpers.http_server import LoopbackHTTPServer
from tests.helpers.ports import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class WebhookServer(LoopbackHTTPServer):
    """Records every POST; answers the first `fail_first` requests (or all, with
    fail_always) with `fail_status` instead."""

    def __init__(
        self, fail_first: int = 0, fail_always: bool = False, fail_status: int = 500
    ) -> None:
        self.received: list[Received] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.fail_always = fail_always
        self.fail_status = fail_status
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                server.attempts += 1
                if server.fail_always or server.attempts <= server.fail_first:
                    self.send_response(server.fail_status)
                    self.end_headers()
                    return
                server.received.append(Received(self.path, dict(self.headers), json.loads(raw)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@dataclass
class _Collector:
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 Message accepted for delivery"


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it receives."""

    def __init__(self) -> None:
        self.collector = _Collector()
        self.port = free_port()
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[tuple[str, list[str], Message]]:
        return self.collector.messages

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
