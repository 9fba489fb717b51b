"""The execution log and the run lock."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from reminders_pipeline.admin.auth import CHECKED_TOKEN
from reminders_pipeline.admin.deps import Services
from reminders_pipeline.admin.models import (
    TOKEN_CHECKED,
    Limit,
    LockStatus,
    Offset,
    Page,
    RunEntry,
    error_responses,
    page,
)
from reminders_pipeline.db.lock_holder import find_lock_holder, lock_state

router = APIRouter(
    tags=["runs"], dependencies=[CHECKED_TOKEN], responses=error_responses(*TOKEN_CHECKED)
)


@router.get("/runs", response_model=Page[RunEntry])
def list_runs(
    services: Services,
    status: Annotated[
        Literal["running", "success", "skipped", "failed", "abandoned"] | None,
        Query(description="Only runs with this status."),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """The execution log, newest first."""
    return page(services.runlog.recent(limit=limit, offset=offset, status=status), limit, offset)


@router.get("/lock", response_model=LockStatus)
def lock_status(services: Services) -> Any:
    """The run lock: free, or who holds it."""
    with services.db.connection() as conn:  # a pooled one, like every route's
        return lock_state(find_lock_holder(conn))
