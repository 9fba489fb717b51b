"""Bearer-token authentication: the Reader and Corrector dependencies of the routes.

A refusal is logged (logger reminders_pipeline.admin) with what was wrong, never
the token itself.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reminders_pipeline.admin.tokens import CORRECT, READ, TokenIdentity, TokenStore

log = logging.getLogger("reminders_pipeline.admin")

_bearer = HTTPBearer(auto_error=False, description="A token from `reminders admin create-token`.")


def _refuse(request: Request, status: int, detail: str, why: str) -> HTTPException:
    # Never the token itself: only what was wrong with it.
    client = request.client.host if request.client else "unknown"
    log.warning(
        "admin API refused %s %s from %s (%d): %s",
        request.method,
        request.url.path,
        client,
        status,
        why,
    )
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return HTTPException(status, detail, headers=headers)


def _authorised(
    request: Request, credentials: HTTPAuthorizationCredentials | None, scope: str
) -> TokenIdentity:
    if credentials is None:
        raise _refuse(
            request,
            401,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            "no bearer token",
        )
    tokens: TokenStore = request.app.state.services.tokens
    check = tokens.authenticate(credentials.credentials)
    if check.identity is None:
        raise _refuse(request, 401, "invalid or revoked token", check.failure or "")
    if scope not in check.identity.scopes:
        raise _refuse(
            request,
            403,
            f"token {check.identity.name!r} lacks the {scope!r} scope",
            f"token {check.identity.name!r} lacks scope {scope!r}",
        )
    return check.identity


def _reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenIdentity:
    return _authorised(request, credentials, READ)


def _corrector(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenIdentity:
    return _authorised(request, credentials, CORRECT)


Reader = Annotated[TokenIdentity, Depends(_reader)]
Corrector = Annotated[TokenIdentity, Depends(_corrector)]
