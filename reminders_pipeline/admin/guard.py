"""RequestGuard: what every request passes before any route, any body parsing or any query.

In order: HEAD is answered as GET without a body (asgi.py); the request line and
headers are held to a size (431), a declared body to a size (413: sizes.py); then
the bearer token and its scope are checked (401, 429, 403: auth.py) and the
identity handed to the routes. Only then is the body read, at most the limit (413)
and within its deadline (408), and given to the route. So a request without a
valid token costs one header scan and one indexed lookup at most, whatever it
carries.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from reminders_pipeline.admin.asgi import Refusal, answer, replay, without_body
from reminders_pipeline.admin.auth import IDENTITY, authenticate
from reminders_pipeline.admin.deps import AdminServices
from reminders_pipeline.admin.scrub import scrub_target
from reminders_pipeline.admin.sizes import head_refusal, read_body

PUBLIC_PATHS = frozenset({"/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
DOCS_ASSETS = "/static-offline-docs/"


class RequestGuard:
    """ASGI middleware over the app's AdminServices (tokens, limits, limiter)."""

    def __init__(self, app: ASGIApp, services: AdminServices) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            scope = dict(scope, method="GET")
            send = without_body(send)
        if refusal := head_refusal(scope, self.services.limits):
            await answer(scope, receive, send, refusal)
            return
        path: str = scope["path"]
        client = scope["client"][0] if scope.get("client") else "unknown"
        where = f"{scope['method']} {scrub_target(path)} from {client}"
        if not (path in PUBLIC_PATHS or path.startswith(DOCS_ASSETS)):
            identity = await authenticate(scope, self.services, client, where)
            if isinstance(identity, Refusal):
                await answer(scope, receive, send, identity)
                return
            scope.setdefault("state", {})[IDENTITY] = identity
        body = await read_body(receive, self.services.limits, where)
        if isinstance(body, Refusal):
            await answer(scope, receive, send, body)
        elif body is not None:
            await self.app(scope, replay(body, receive), send)
