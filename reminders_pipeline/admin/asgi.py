"""Raw ASGI for the guard: a refusal answered before any route, HEAD answered as
GET without a body, and a body read once and handed on."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send


@dataclass(frozen=True)
class Refusal:
    """An answer of {"detail": ...}: the guard's instead of the route, or the database's."""

    status: int
    detail: str
    headers: dict[str, str] = field(default_factory=dict)


async def answer(scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
    # Nothing of the body has been read: the connection cannot be reused safely.
    headers = {**refusal.headers, "Connection": "close"}
    await JSONResponse({"detail": refusal.detail}, refusal.status, headers)(scope, receive, send)


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
