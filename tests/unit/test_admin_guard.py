"""The admin guard's rooms without a server or a database: sizes, the token's scope,
and the order (a refusal before any byte of the body is read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from reminders_pipeline.admin.asgi import Refusal
from reminders_pipeline.admin.auth import IDENTITY, needed_scope
from reminders_pipeline.admin.guard import RequestGuard
from reminders_pipeline.admin.ratelimit import FailedAuthLimiter
from reminders_pipeline.admin.sizes import head_refusal, read_body
from reminders_pipeline.admin.tokens import CORRECT, READ, TokenCheck, TokenIdentity
from reminders_pipeline.settings import AdminApiSettings

LIMITS = AdminApiSettings(max_body_bytes=100, max_header_bytes=1024, body_timeout_s=1)
READER = "rmd_0123456789abcdef_reader"
CORRECTOR = "rmd_0123456789abcdef_corrector"


def scope(method: str = "GET", path: str = "/runs", headers: Any = ()) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": list(headers),
        "client": ("127.0.0.1", 1234),
    }


def bearer(token: str) -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {token}".encode())


def test_a_head_over_the_limit_is_431_and_a_declared_body_over_it_413() -> None:
    padded = scope(headers=[(b"x-padding", b"p" * 1024)])
    assert head_refusal(padded, LIMITS) == Refusal(
        431, "request line and headers exceed 1024 bytes"
    )
    declared = scope("PUT", headers=[(b"content-length", b"101")])
    assert head_refusal(declared, LIMITS) == Refusal(413, "request body exceeds 100 bytes")
    not_a_number = scope("PUT", headers=[(b"content-length", b"1e3")])
    assert head_refusal(not_a_number, LIMITS) == Refusal(400, "Content-Length is not a number")
    superscript = scope("PUT", headers=[(b"content-length", "\u00b2".encode("latin-1"))])
    assert head_refusal(superscript, LIMITS) == Refusal(400, "Content-Length is not a number")
    assert head_refusal(scope("PUT", headers=[(b"content-length", b"100")]), LIMITS) is None


def messages(*chunks: bytes, end: dict[str, Any] | None = None) -> Any:
    """A client sending `chunks`, then `end` (None: nothing more, ever)."""
    queue: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": True} for c in chunks
    ]

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        if end is None:
            await anyio.sleep(3600)
        return end  # type: ignore[return-value]

    return receive


def read(receive: Any) -> bytes | Refusal | None:
    return anyio.run(read_body, receive, LIMITS, "PUT /x from test")


def test_a_body_is_read_whole_refused_past_the_limit_or_past_its_deadline() -> None:
    done = {"type": "http.request", "body": b"", "more_body": False}
    assert read(messages(b"a" * 60, b"b" * 40, end=done)) == b"a" * 60 + b"b" * 40
    over = messages(b"a" * 60, b"b" * 41, end=done)
    assert read(over) == Refusal(413, "request body exceeds 100 bytes")
    assert read(messages(b"a", end={"type": "http.disconnect"})) is None
    assert read(messages(b"a")) == Refusal(408, "request body not complete within 1 s")


def test_get_needs_read_and_every_other_method_correct() -> None:
    assert needed_scope("GET") == READ
    assert {needed_scope(m) for m in ("PUT", "POST", "PATCH", "DELETE")} == {CORRECT}


@dataclass
class FakeTokens:
    """Two valid tokens; anything else fails as a made-up key would."""

    checked: list[str] = field(default_factory=list)

    def authenticate(self, token: str) -> TokenCheck:
        self.checked.append(token)
        scopes = {READER: frozenset({READ}), CORRECTOR: frozenset({CORRECT})}
        if token in scopes:
            return TokenCheck(TokenIdentity(token.rsplit("_", 1)[1], scopes[token]))
        return TokenCheck(None, "no such token")


@dataclass
class FakeServices:
    tokens: FakeTokens = field(default_factory=FakeTokens)
    limits: AdminApiSettings = LIMITS
    auth_failures: FailedAuthLimiter = field(default_factory=lambda: FailedAuthLimiter(10))


def serve(request: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any], int]:
    """What the guard sent, the identities that reached the route, and how many
    body messages were read."""
    reached: list[Any] = []
    read: list[int] = []

    async def route(scope: Any, receive: Any, send: Any) -> None:
        reached.append((scope.get("state") or {}).get(IDENTITY))
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        read.append(1)
        return {"type": "http.request", "body": b"{}", "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    guard = RequestGuard(route, FakeServices())  # type: ignore[arg-type]
    anyio.run(guard, request, receive, send)
    return sent, reached, len(read)


@pytest.mark.parametrize(
    ("method", "token", "status"),
    [
        ("GET", READER, 200),
        ("GET", CORRECTOR, 403),
        ("PUT", CORRECTOR, 200),
        ("PUT", READER, 403),
        ("PUT", "rmd_0123456789abcdef_guess", 401),
        ("PUT", None, 401),
    ],
)
def test_the_scope_is_checked_once_before_any_byte_of_the_body(method, token, status) -> None:
    headers = [bearer(token)] if token else []
    sent, reached, read = serve(scope(method, "/assignments/1", headers))
    assert sent[0]["status"] == status
    if status == 200:
        assert [identity.name for identity in reached] == [token.rsplit("_", 1)[1]]
        assert read == 1
    else:
        assert (reached, read) == ([], 0)


def test_public_paths_need_no_token_and_head_is_answered_as_get_without_a_body() -> None:
    sent, reached, _ = serve(scope("GET", "/healthz"))
    assert (sent[0]["status"], reached, sent[1]["body"]) == (200, [None], b"ok")
    sent, reached, _ = serve(scope("HEAD", "/healthz"))
    assert (sent[0]["status"], reached, sent[1]["body"]) == (200, [None], b"")
