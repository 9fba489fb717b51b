"""The bearer token and its scope, decided from the headers alone, and the route
dependency that hands the identity on.

A token is checked (401; 429 instead once the client's or the key's failures pass
the limit, and at once without a well-formed token: ratelimit.py; a valid token is
never refused), then its scope (403): GET needs `read`, anything else `correct`.
The guard (guard.py) does both before the body is read; a route finds the identity
on the request (Caller). A refusal is logged (logger reminders_pipeline.admin) with
what was wrong, never the token.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated

import anyio
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer
from starlette.datastructures import Headers
from starlette.types import Scope

from reminders_pipeline.admin.asgi import Refusal
from reminders_pipeline.admin.deps import AdminServices
from reminders_pipeline.admin.handlers import database_refusal
from reminders_pipeline.admin.tokens import CORRECT, READ, TokenCheck, TokenIdentity, key_id_of
from reminders_pipeline.errors import DatabaseError

log = logging.getLogger("reminders_pipeline.admin")

IDENTITY = "token_identity"  # where the checked identity waits in scope["state"]
_BEARER = re.compile(r"Bearer +([\x21-\x7e]+)", re.IGNORECASE)
_UNAUTHORISED = {"WWW-Authenticate": "Bearer"}


def needed_scope(method: str) -> str:
    return READ if method == "GET" else CORRECT


async def authenticate(
    scope: Scope, services: AdminServices, client: str, where: str
) -> TokenIdentity | Refusal:
    """The identity of the request's token when it may call the route; otherwise
    the refusal (401, 403, 429, or the database's answer). `where` names the
    request in log lines (method, scrubbed path, client)."""
    limiter = services.auth_failures
    token = _bearer_token(Headers(scope=scope).get("authorization", ""))
    key_id = key_id_of(token) if token is not None else None
    # Without a well-formed token nothing can verify: past the address's limit
    # such a request is refused before any work. A token is always checked, so
    # a valid one is never refused however many failures came before it.
    if key_id is None and (wait := limiter.retry_after_s(client)) is not None:
        return _too_many(where, wait)
    if token is None:
        check = TokenCheck(None, "no bearer token")
        detail = "missing bearer token: send 'Authorization: Bearer <token>'"
    else:
        try:
            check = await anyio.to_thread.run_sync(services.tokens.authenticate, token)
        except DatabaseError as exc:
            log.warning("admin API: %s: %s", where, exc)
            return database_refusal(exc)
        detail = "invalid or revoked token"
    if check.identity is None:
        counted_key = key_id if check.key_exists else None
        if (wait := limiter.retry_after_s(client, counted_key)) is not None:
            return _too_many(where, wait)
        limiter.failed(client, counted_key)
        # Never the token itself: only what was wrong with it.
        log.warning("admin API refused %s (401): %s", where, check.failure)
        return Refusal(401, detail, _UNAUTHORISED)
    needed = needed_scope(scope["method"])
    if needed not in check.identity.scopes:
        name = check.identity.name
        log.warning("admin API refused %s (403): token %r lacks scope %r", where, name, needed)
        return Refusal(403, f"token {name!r} lacks the {needed!r} scope")
    return check.identity


def _too_many(where: str, wait: int) -> Refusal:
    log.warning("admin API refused %s (429): too many failed authentications", where)
    detail = f"too many failed authentications; retry in {wait} s"
    return Refusal(429, detail, {"Retry-After": str(wait)})


def _bearer_token(authorization: str) -> str | None:
    match = _BEARER.fullmatch(authorization.strip())
    return match.group(1) if match else None


# For the OpenAPI schema only (the "Authorize" button of /docs); the guard checks.
_bearer = HTTPBearer(auto_error=False, description="A token from `reminders admin create-token`.")


def _caller(request: Request, _: Annotated[object, Depends(_bearer)]) -> TokenIdentity:
    identity: TokenIdentity | None = getattr(request.state, IDENTITY, None)
    if identity is None:  # the guard lets no such request through; never trust that alone
        raise HTTPException(401, "missing bearer token", headers=_UNAUTHORISED)
    return identity


# The identity the guard checked, scope included (needed_scope): a route's parameter
# when it needs the name, else a router's dependency (the same check, the same schema).
CHECKED_TOKEN = Depends(_caller)
Caller = Annotated[TokenIdentity, CHECKED_TOKEN]
