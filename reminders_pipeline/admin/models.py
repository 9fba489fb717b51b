"""The admin API's request and response models, and the parameter types its routes share."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from reminders_pipeline.contacts.corrections import REASON_MAX_LENGTH, check_reason
from reminders_pipeline.db.lock_holder import LockHolder
from reminders_pipeline.errors import CorrectionRefused

BIGINT_MAX = 2**63 - 1
MAX_PAGE = 500
MAX_OFFSET = 1_000_000_000

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_only(value: Any) -> Any:
    # Pydantic would also take timestamps and datetimes; the API promises YYYY-MM-DD.
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


_DIGITS = re.compile(r"0|[1-9][0-9]{0,18}")


def _digits_only(value: Any) -> Any:
    # Pydantic would take "1.0", "+1", " 1", "01" and "1_0": numbers in the URL are digits.
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("must be a whole number written in digits only, without leading zeros")
    return value


Digits = BeforeValidator(_digits_only)


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
# The bounds before the digits check: after a validator, pydantic would publish
# them as non-standard `ge`/`le` instead of JSON Schema's minimum/maximum.
AssignmentId = Annotated[
    int, Path(ge=1, le=BIGINT_MAX, description="The assignment's id (digits only)."), Digits
]
AssignmentFilter = Annotated[
    int | None, Query(ge=1, le=BIGINT_MAX, description="Only this assignment."), Digits
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size."), Digits]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip."), Digits]


class ErrorBody(BaseModel):
    detail: str = Field(description="What was wrong.")


class InvalidField(BaseModel):
    loc: list[str | int] = Field(description="Where: body, path or query, then the field.")
    msg: str
    type: str


class InvalidRequestBody(BaseModel):
    detail: list[InvalidField]
    message: str = Field(description="Every error in one line.")


class LastContactCorrection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    last_contact_date: IsoDate = Field(
        description="The corrected date: not in the future, not before the assignment started."
    )
    reason: str = Field(
        min_length=1,
        # Checked after trimming (check_reason); stated here for the schema.
        json_schema_extra={"maxLength": REASON_MAX_LENGTH},
        description="Why the date is corrected, one line of plain text (trimmed; no control, "
        "bidi or zero-width characters); kept in the audit.",
    )
    allow_closed: bool = Field(
        default=False,
        description="Correct a closed assignment anyway (refused otherwise, as contacts are).",
    )

    @field_validator("reason")
    @classmethod
    def _plain_reason(cls, value: str) -> str:
        try:
            return check_reason(value)
        except CorrectionRefused as exc:
            raise ValueError(exc.detail) from None


class CurrentReminder(BaseModel):
    sequence: int
    due_on: date
    created: bool


class Reminder(BaseModel):
    id: int
    kind: str
    due_on: date
    silence_started_on: date
    sequence: int
    channel: str
    state: str
    attempts: int
    created_at: datetime
    delivered_at: datetime | None


class Activity(BaseModel):
    id: int
    kind: str
    occurred_on: date
    registered_via: str
    registered_by: str | None
    created_at: datetime


class AuditEntry(BaseModel):
    id: int
    token_name: str
    action: str
    assignment_id: int
    old_value: date | None
    new_value: date
    reason: str
    at: datetime


class Correction(BaseModel):
    audit_id: int
    token_name: str
    old_value: date | None
    new_value: date
    reason: str
    at: datetime


class AssignmentView(BaseModel):
    id: int
    mentor_id: int
    status: str
    started_on: date
    last_contact_date: date
    reminder_interval_days: int
    interval_is_default: bool
    today: date = Field(description="Today in the organisation's timezone.")
    next_reminder_due_on: date | None = Field(
        description="Due date of the next reminder on or after today for the current silence; "
        "null when not active or when the silence has used all its reminders."
    )
    current_reminder: CurrentReminder | None = Field(
        description="The latest reminder due on or before today, and whether it exists yet."
    )
    recent_reminders: list[Reminder]
    recent_activities: list[Activity]
    recent_corrections: list[AuditEntry]


class CorrectedAssignment(AssignmentView):
    correction: Correction


class RunEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    status: str
    as_of: date
    dagster_run_id: str | None
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    selected: int | None
    created: int | None
    already_existed: int | None
    error: str | None


Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")


class LockStatus(BaseModel):
    lock_key: list[int]
    held: bool
    holder: LockHolder | None  # the dataclass itself: one shape, no copy


class Health(BaseModel):
    status: str
    database: str


_ERRORS = {
    400: "Content-Length is not a number.",
    401: "No token, or an invalid or revoked one.",
    403: "The token lacks the scope this route needs.",
    404: "No such assignment.",
    408: "The request body did not arrive in time.",
    409: "A row is locked by another transaction; retry after Retry-After.",
    422: "A path or query parameter or the body is invalid, or a query parameter unknown.",
    413: "The request body is too large.",
    429: "Too many failed authentications from this client; retry after Retry-After.",
    431: "The request line and headers are too large.",
    503: "The database is busy, slow or away; retry after Retry-After.",
}
# What the guard (guard.py) may answer on any route, before it runs.
GUARDED = (400, 408, 413, 431, 503)
# ...and on a route that needs a token (409: the token's use stamp met a lock).
# (422: an unknown query parameter, whatever else the route takes: query.py.)
TOKEN_CHECKED = (*GUARDED, 401, 403, 409, 422, 429)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI: these status codes answer with an ErrorBody (422: the fields at fault)."""
    return {
        code: {
            "model": InvalidRequestBody if code == 422 else ErrorBody,
            "description": _ERRORS[code],
        }
        for code in sorted(set(codes))
    }


def page(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    return {
        "items": items,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(items) == limit else None,
    }
