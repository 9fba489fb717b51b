"""The request's sizes and its body's deadline: a head (431) and a declared body
(413) before anything else, then the body read to at most the limit (413) within
its deadline (408)."""

from __future__ import annotations

import logging

import anyio
from starlette.datastructures import Headers
from starlette.types import Receive, Scope

from reminders_pipeline.admin.asgi import Refusal
from reminders_pipeline.settings import AdminApiSettings

log = logging.getLogger("reminders_pipeline.admin")


def head_refusal(scope: Scope, limits: AdminApiSettings) -> Refusal | None:
    """431 for a request line and headers over the limit; 400 for a Content-Length
    that is not a number, 413 for one over the body limit."""
    head_size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    head_size += sum(len(k) + len(v) + 4 for k, v in scope["headers"])
    if head_size > limits.max_header_bytes:
        return Refusal(431, f"request line and headers exceed {limits.max_header_bytes} bytes")
    declared = Headers(scope=scope).get("content-length")
    if declared is None:
        return None
    # ASCII digits only: Starlette decodes as latin-1, where '²'.isdigit() is true too.
    if not (declared.isascii() and declared.isdigit()):
        return Refusal(400, "Content-Length is not a number")
    return _too_large(limits) if int(declared) > limits.max_body_bytes else None


async def read_body(
    receive: Receive, limits: AdminApiSettings, where: str
) -> bytes | Refusal | None:
    """The whole body, a refusal (413, 408), or None when the client went away."""
    body = b""
    more = True
    # A body trickled byte by byte would hold the connection (and a request's
    # place) for ever: it has its own deadline, counted from the head.
    with anyio.move_on_after(limits.body_timeout_s):
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limits.max_body_bytes:
                return _too_large(limits)
    if more:
        timeout = limits.body_timeout_s
        log.warning("admin API refused %s (408): body not complete within %d s", where, timeout)
        return Refusal(408, f"request body not complete within {timeout} s")
    return body


def _too_large(limits: AdminApiSettings) -> Refusal:
    return Refusal(413, f"request body exceeds {limits.max_body_bytes} bytes")
