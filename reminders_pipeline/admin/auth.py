"""The Reader and Corrector dependencies of the routes: the token's scope (403).

The token itself is checked before any route runs and before the body is read
(guard.RequestGuard); a route finds the identity on the request. A refusal is
logged (logger reminders_pipeline.admin) with what was wrong, never the token.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer

from reminders_pipeline.admin.guard import IDENTITY, scrub_target
from reminders_pipeline.admin.tokens import CORRECT, READ, TokenIdentity

log = logging.getLogger("reminders_pipeline.admin")

# For the OpenAPI schema only (the "Authorize" button of /docs); the guard checks.
_bearer = HTTPBearer(auto_error=False, description="A token from `reminders admin create-token`.")


def _authorised(request: Request, scope: str) -> TokenIdentity:
    identity: TokenIdentity | None = getattr(request.state, IDENTITY, None)
    if identity is None:  # the guard lets no such request through; never trust that alone
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if scope not in identity.scopes:
        client = request.client.host if request.client else "unknown"
        log.warning(
            "admin API refused %s %s from %s (403): token %r lacks scope %r",
            request.method,
            scrub_target(request.url.path),
            client,
            identity.name,
            scope,
        )
        raise HTTPException(403, f"token {identity.name!r} lacks the {scope!r} scope")
    return identity


def _reader(request: Request, _: Annotated[object, Depends(_bearer)]) -> TokenIdentity:
    return _authorised(request, READ)


def _corrector(request: Request, _: Annotated[object, Depends(_bearer)]) -> TokenIdentity:
    return _authorised(request, CORRECT)


Reader = Annotated[TokenIdentity, Depends(_reader)]
Corrector = Annotated[TokenIdentity, Depends(_corrector)]
