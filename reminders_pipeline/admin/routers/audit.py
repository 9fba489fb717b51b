"""The audit of manual corrections."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from reminders_pipeline.admin.auth import Caller
from reminders_pipeline.admin.deps import Services
from reminders_pipeline.admin.models import (
    TOKEN_CHECKED,
    AssignmentFilter,
    AuditEntry,
    Limit,
    Offset,
    Page,
    error_responses,
    page,
)

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=Page[AuditEntry], responses=error_responses(*TOKEN_CHECKED))
def list_audit(
    token: Caller,
    services: Services,
    assignment_id: AssignmentFilter = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """Manual corrections, newest first."""
    items = services.assignments.audit(limit=limit, offset=offset, assignment_id=assignment_id)
    return page(items, limit, offset)
