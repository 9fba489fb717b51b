"""GET /healthz: liveness and database reachability, without authentication."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from reminders_pipeline.admin.deps import Services
from reminders_pipeline.admin.models import GUARDED, Health, error_responses
from reminders_pipeline.errors import DatabaseError

router = APIRouter(tags=["health"])

# Its own thread and its own connection (deps.py): never behind the routes'
# threads, the pool, or a row lock; answers within HEALTH_TIMEOUT_S whatever.
_limiter = anyio.CapacityLimiter(2)


# Its 503 is its own Health body, not the guard's ErrorBody: it needs no token, so
# the guard never asks the database on its behalf.
UNAVAILABLE = {503: {"model": Health, "description": "The database did not answer."}}


@router.get(
    "/healthz",
    response_model=Health,
    responses={**error_responses(*(c for c in GUARDED if c != 503)), **UNAVAILABLE},
)
async def healthz(services: Services) -> Any:
    """Liveness and database reachability; no authentication."""
    try:
        await anyio.to_thread.run_sync(services.health_db.fetch_one, "admin_ping", limiter=_limiter)
    except DatabaseError:
        return JSONResponse(
            status_code=503, content={"status": "unavailable", "database": "unreachable"}
        )
    return {"status": "ok", "database": "ok"}
