"""An assignment's state, the manual correction of its last contact date, and the
audit of those corrections."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter

from reminders_pipeline.admin.auth import CHECKED_TOKEN, Caller
from reminders_pipeline.admin.deps import Services
from reminders_pipeline.admin.models import (
    TOKEN_CHECKED,
    AssignmentFilter,
    AssignmentId,
    AssignmentView,
    AuditEntry,
    CorrectedAssignment,
    LastContactCorrection,
    Limit,
    Offset,
    Page,
    error_responses,
    page,
)

log = logging.getLogger("reminders_pipeline.admin")
router = APIRouter(dependencies=[CHECKED_TOKEN], responses=error_responses(*TOKEN_CHECKED))


@router.get(
    "/assignments/{assignment_id}",
    tags=["assignments"],
    response_model=AssignmentView,
    responses=error_responses(404),
)
def get_assignment(assignment_id: AssignmentId, services: Services) -> Any:
    """An assignment: last contact, next reminder due date, recent reminders."""
    return services.assignments.assignment(assignment_id)


@router.put(
    "/assignments/{assignment_id}/last-contact-date",
    tags=["assignments"],
    response_model=CorrectedAssignment,
    responses=error_responses(404),
)
def correct_last_contact_date(
    assignment_id: AssignmentId, body: LastContactCorrection, token: Caller, services: Services
) -> Any:
    """Correct last_contact_date by hand; audited with the token's name and the reason."""
    result = services.assignments.correct_last_contact_date(
        assignment_id,
        body.last_contact_date,
        body.reason,
        token_name=token.name,
        allow_closed=body.allow_closed,
    )
    # One INFO line per correction (the reason stays in the audit, not the log).
    log.info(
        "token %r corrected last_contact_date of assignment %s: %s -> %s (audit %s)",
        token.name,
        assignment_id,
        result["correction"]["old_value"],
        result["correction"]["new_value"],
        result["correction"]["audit_id"],
    )
    return result


@router.get("/audit", tags=["audit"], response_model=Page[AuditEntry])
def list_audit(
    services: Services,
    assignment_id: AssignmentFilter = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """Manual corrections, newest first."""
    items = services.assignments.audit(limit=limit, offset=offset, assignment_id=assignment_id)
    return page(items, limit, offset)
