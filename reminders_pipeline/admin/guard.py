"""RequestGuard: what every request passes before any route, any body parsing or any query.

In order: HEAD is answered as GET without a body; the request line and headers are
held to a size (431); a declared body to a size (413); then the bearer token is
checked (401; 429 instead once the client's or the key's failures pass the limit,
and at once without a well-formed token: ratelimit.py; a valid token is never
refused) and the identity handed to the routes, which check its scope (403). Only
then is the body read, at most the limit (413) and within its deadline (408), and
given to the route. So a request without a valid token costs one header scan and
one indexed lookup at most, whatever it carries.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote

import anyio

from reminders_pipeline.admin.handlers import database_answer
from reminders_pipeline.admin.tokens import CORRECT, READ, TokenCheck, key_id_of
from reminders_pipeline.errors import DatabaseError

log = logging.getLogger("reminders_pipeline.admin")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = frozenset({"/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
DOCS_ASSETS = "/static-offline-docs/"
IDENTITY = "token_identity"  # where the checked identity waits in scope["state"]

_BEARER = re.compile(r"Bearer +([\x21-\x7e]+)", re.IGNORECASE)
# Query parameters the API has; every other value may be anything, a token too.
_KNOWN_QUERY = frozenset({"status", "limit", "offset", "assignment_id"})
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.-]{0,32}")
_SECRET_SEGMENT = re.compile(r"rmd(_|%5f)", re.IGNORECASE)
# A token's secret sent alone (without `rmd_<key id>_`) is 43 characters of the
# URL-safe alphabet: any run of 16 or more such characters (percent escapes too)
# in a segment that is not one of the API's own words is taken for a secret.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9_.~%-]{16,}")
_KNOWN_SEGMENTS = frozenset(
    {
        "last-contact-date",
        "oauth2-redirect",
        "static-offline-docs",
        "swagger-ui-bundle.js",
        "redoc.standalone.js",
        "swagger-ui.css",
    }
)
REDACTED = "[redacted]"
# Kept as they are in a logged path segment; everything else is percent-encoded.
_PATH_SAFE = "!$&'()*+,;=:@%"


def scrub_target(path: str, query: str = "") -> str:
    """A request target fit for a log line: no token, wherever the client put it.

    Values of unknown query parameters, and path segments that look like a token,
    are replaced by [redacted].
    """
    # Percent-encoded again: a decoded path may hold a line break or any text a
    # client wants in the log.
    segments = [
        REDACTED if _secret_shaped(s) else quote(s, safe=_PATH_SAFE) for s in path.split("/")
    ]
    clean = "/".join(segments)
    if not query:
        return clean
    pairs = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _KNOWN_QUERY:
            pairs.append(f"{REDACTED}={REDACTED}")
            continue
        pairs.append(f"{quote(key)}={value if _PLAIN_VALUE.fullmatch(value) else REDACTED}")
    return f"{clean}?{'&'.join(pairs)}"


def _secret_shaped(segment: str) -> bool:
    if segment in _KNOWN_SEGMENTS:
        return False
    return bool(_SECRET_SEGMENT.search(segment) or _TOKEN_RUN.search(segment))


class AccessLogScrubber(logging.Filter):
    """The server's access log line with the request target scrubbed (scrub_target):
    Granian's (a dict; `target` is added for the line's format) or uvicorn's."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, dict) and "path" in args:
            target = scrub_target(str(args["path"]), str(args.get("query_string") or ""))
            path, _, query = target.partition("?")
            record.args = dict(args, target=target, path=path, query_string=query)
            return True
        # uvicorn.access: (client, method, full_path, http_version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path, _, query = args[2].partition("?")
            record.args = (args[0], args[1], scrub_target(path, query), args[3], args[4])
        return True


def install_access_log_scrubber() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogScrubber) for f in access.filters):
        access.addFilter(AccessLogScrubber())


async def _answer(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    # Nothing of the body has been read: the connection cannot be reused safely.
    raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def _without_body(send: Send) -> Send:
    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body", False):
                return
            message = {"type": "http.response.body", "body": b""}
        await send(message)

    return send_head


class RequestGuard:
    """ASGI middleware; `services` is the app's AdminServices (tokens, limits, limiter)."""

    def __init__(self, app: ASGIApp, services: Any) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            # Every GET route answers HEAD: the same status and headers, no body.
            scope = dict(scope, method="GET")
            send = _without_body(send)
        limits = self.services.limits
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        head_size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        head_size += sum(len(k) + len(v) + 4 for k, v in headers)
        if head_size > limits.max_header_bytes:
            await _answer(
                send,
                431,
                {"detail": f"request line and headers exceed {limits.max_header_bytes} bytes"},
            )
            return
        declared = _content_length(headers)
        if declared == -1:
            await _answer(send, 400, {"detail": "Content-Length is not a number"})
            return
        if declared is not None and declared > limits.max_body_bytes:
            await _answer(send, 413, _too_large(limits.max_body_bytes))
            return
        path: str = scope["path"]
        public = path in PUBLIC_PATHS or path.startswith(DOCS_ASSETS)
        if not public and not await self._authenticate(scope, headers, send):
            return
        body = b""
        more = True
        # A body trickled byte by byte would hold the connection (and a request's
        # place) for ever: it has its own deadline, counted from the head.
        with anyio.move_on_after(limits.body_timeout_s):
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > limits.max_body_bytes:
                    await _answer(send, 413, _too_large(limits.max_body_bytes))
                    return
        if more:
            log.warning(
                "admin API refused %s %s (408): body not complete within %d s",
                scope["method"],
                scrub_target(path),
                limits.body_timeout_s,
            )
            detail = f"request body not complete within {limits.body_timeout_s} s"
            await _answer(send, 408, {"detail": detail})
            return
        await self.app(scope, _replay(body, receive), send)

    async def _authenticate(
        self, scope: Scope, headers: list[tuple[bytes, bytes]], send: Send
    ) -> bool:
        client = scope["client"][0] if scope.get("client") else "unknown"
        where = f"{scope['method']} {scrub_target(scope['path'])} from {client}"
        limiter = self.services.auth_failures
        token = _bearer_token(headers)
        key_id = key_id_of(token) if token is not None else None
        # Without a well-formed token nothing can verify: past the address's limit
        # such a request is refused before any work. A token is always checked, so
        # a valid one is never refused however many failures came before it.
        if key_id is None and (wait := limiter.retry_after_s(client)) is not None:
            await _too_many(send, where, wait)
            return False
        if token is None:
            check = TokenCheck(None, "no bearer token")
            detail = "missing bearer token: send 'Authorization: Bearer <token>'"
        else:
            try:
                check = await anyio.to_thread.run_sync(self.services.tokens.authenticate, token)
            except DatabaseError as exc:
                log.warning("admin API: %s: %s", where, exc)
                status, detail, retry_after = database_answer(exc)
                extra = {} if retry_after is None else {"Retry-After": str(retry_after)}
                await _answer(send, status, {"detail": detail}, extra)
                return False
            detail = "invalid or revoked token"
        if check.identity is None:
            counted_key = key_id if check.key_exists else None
            wait = limiter.retry_after_s(client, counted_key)
            if wait is not None:
                await _too_many(send, where, wait)
                return False
            limiter.failed(client, counted_key)
            # Never the token itself: only what was wrong with it.
            log.warning("admin API refused %s (401): %s", where, check.failure)
            await _answer(send, 401, {"detail": detail}, {"WWW-Authenticate": "Bearer"})
            return False
        # Scope before the body too: GET needs read, anything else correct.
        needed = READ if scope["method"] == "GET" else CORRECT
        if needed not in check.identity.scopes:
            name = check.identity.name
            log.warning("admin API refused %s (403): token %r lacks scope %r", where, name, needed)
            await _answer(send, 403, {"detail": f"token {name!r} lacks the {needed!r} scope"})
            return False
        scope.setdefault("state", {})[IDENTITY] = check.identity
        return True


async def _too_many(send: Send, where: str, wait: int) -> None:
    log.warning("admin API refused %s (429): too many failed authentications", where)
    await _answer(
        send,
        429,
        {"detail": f"too many failed authentications; retry in {wait} s"},
        {"Retry-After": str(wait)},
    )


def _bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            match = _BEARER.fullmatch(value.decode("latin-1").strip())
            return match.group(1) if match else None
    return None


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The declared body size; None when not declared, -1 when not a number."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


def _too_large(limit: int) -> dict[str, str]:
    return {"detail": f"request body exceeds {limit} bytes"}


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # a disconnect, when the route waits for one

    return replay
