"""GET /healthz: liveness and database reachability, without authentication."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from reminders_pipeline.admin.deps import Services
from reminders_pipeline.admin.models import Health, error_responses
from reminders_pipeline.errors import DatabaseUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses=error_responses(503))
def healthz(services: Services) -> Any:
    """Liveness and database reachability; no authentication."""
    try:
        services.db.fetch_one("admin_ping")
    except DatabaseUnavailable:
        return JSONResponse(
            status_code=503, content={"status": "unavailable", "database": "unreachable"}
        )
    return {"status": "ok", "database": "ok"}
