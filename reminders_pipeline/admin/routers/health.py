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


@router.get("/healthz", response_model=Health, responses=error_responses(*GUARDED))
async def healthz(services: Services) -> Any:
    """Liveness and database reachability; no authentication."""
    try:
        await anyio.to_thread.run_sync(services.health_db.fetch_one, "admin_ping", limiter=_limiter)
    except DatabaseError:
        return JSONResponse(
            status_code=503, content={"status": "unavailable", "database": "unreachable"}
        )
    return {"status": "ok", "database": "ok"}
