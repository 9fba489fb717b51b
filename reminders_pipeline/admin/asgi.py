"""Raw ASGI for the guard: the types, a refusal answered before any route, HEAD
answered as GET without a body, and a body read once and handed on."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Refusal:
    """What the guard answers instead of the route: {"detail": ...} and its headers."""

    status: int
    detail: str
    headers: dict[str, str] = field(default_factory=dict)


def header(headers: Headers, name: bytes) -> bytes | None:
    """The first value of a header (`name` in lower case, as ASGI gives it)."""
    return next((value for key, value in headers if key == name), None)


async def answer(send: Send, refusal: Refusal) -> None:
    payload = json.dumps({"detail": refusal.detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in refusal.headers.items()]
    # Nothing of the body has been read: the connection cannot be reused safely.
    raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def without_body(send: Send) -> Send:
    """Every GET route answers HEAD: the same status and headers, no body."""

    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body", False):
                return
            message = {"type": "http.response.body", "body": b""}
        await send(message)

    return send_head


def replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, as the route's first message."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # a disconnect, when the route waits for one

    return replayed
