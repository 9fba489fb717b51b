"""The admin API: a small FastAPI app over the reminders database.

Routes are thin: they authenticate, validate and call the services
(AssignmentAdminService, TokenStore, RunLog, find_lock_holder). Every error
body says what was wrong: {"detail": "..."} for 401/403/404/503, and for 422
FastAPI's list of {loc, msg, type} whose loc names the field, plus a one-line
"message".
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from reminders_pipeline.admin.tokens import CORRECT, READ, TokenIdentity, TokenStore
from reminders_pipeline.contacts.corrections import (
    REASON_MAX_LENGTH,
    AssignmentAdminService,
    check_reason,
)
from reminders_pipeline.core.lock import LockHolder, lock_holder, lock_state
from reminders_pipeline.core.runlog import RunLog
from reminders_pipeline.db.connector import Database
from reminders_pipeline.errors import (
    AssignmentNotFound,
    CorrectionRefused,
    DatabaseUnavailable,
)
from reminders_pipeline.settings import ReminderSettings

log = logging.getLogger("reminders_pipeline.admin")

BIGINT_MAX = 2**63 - 1
MAX_PAGE = 500
MAX_OFFSET = 1_000_000_000

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_only(value: Any) -> Any:
    # Pydantic would also take timestamps and datetimes; the API promises YYYY-MM-DD.
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
AssignmentId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="The assignment's id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip.")]


# ------------------------------------------------------------------ models


class ErrorBody(BaseModel):
    detail: str = Field(description="What was wrong.")


class LastContactCorrection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    last_contact_date: IsoDate = Field(
        description="The corrected date: not in the future, not before the assignment started."
    )
    reason: str = Field(
        min_length=1,
        max_length=REASON_MAX_LENGTH,
        description="Why the date is corrected; kept in the audit.",
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


class RunsPage(BaseModel):
    items: list[RunEntry]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")


class AuditPage(BaseModel):
    items: list[AuditEntry]
    limit: int
    offset: int
    next_offset: int | None


class LockStatus(BaseModel):
    lock_key: list[int]
    held: bool
    holder: LockHolder | None  # the dataclass itself: one shape, no copy


class Health(BaseModel):
    status: str
    database: str


# ------------------------------------------------------------------ authentication

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
    tokens: TokenStore = request.app.state.tokens
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


# ------------------------------------------------------------------ the app


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}


def _page(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    return {
        "items": items,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(items) == limit else None,
    }


def create_app(url: str, settings: ReminderSettings | None = None) -> FastAPI:
    """The admin API over the reminders database at `url`."""
    settings = settings or ReminderSettings.from_env()
    db = Database(url)
    tokens = TokenStore(db)
    assignments = AssignmentAdminService(db, settings)
    runlog = RunLog(db)

    app = FastAPI(
        title="reminders admin API",
        version="1",
        description=(
            "Read the reminders job's state and correct an assignment's last contact date. "
            "Authenticate with `Authorization: Bearer <token>` (`reminders admin create-token`); "
            "scopes: `read` for GET, `correct` for PUT."
        ),
    )
    app.state.tokens = tokens

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        message = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors
        )
        return JSONResponse(
            status_code=422, content=jsonable_encoder({"detail": errors, "message": message})
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers 400 for a body it cannot decode (not UTF-8, say); our
        # routes never raise 400, so it is always that: an invalid body, a 422.
        if exc.status_code == 400:
            return JSONResponse(
                status_code=422,
                content={
                    "detail": [
                        {"loc": ["body"], "msg": "is not valid JSON text", "type": "json_invalid"}
                    ],
                    "message": "body: is not valid JSON text",
                },
            )
        return await http_exception_handler(request, exc)

    @app.exception_handler(CorrectionRefused)
    async def correction_refused(request: Request, exc: CorrectionRefused) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={
                "detail": [{"loc": ["body", exc.field], "msg": exc.detail, "type": "value_error"}],
                "message": str(exc),
            },
        )

    @app.exception_handler(AssignmentNotFound)
    async def not_found(request: Request, exc: AssignmentNotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(DatabaseUnavailable)
    async def unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.error("admin API: %s", exc)
        return JSONResponse(
            status_code=503, content={"detail": "the reminders database is unavailable"}
        )

    @app.get("/healthz", response_model=Health, responses=_errors(503), tags=["health"])
    def healthz() -> Any:
        """Liveness and database reachability; no authentication."""
        try:
            db.fetch_one("admin_ping")
        except DatabaseUnavailable:
            return JSONResponse(
                status_code=503, content={"status": "unavailable", "database": "unreachable"}
            )
        return {"status": "ok", "database": "ok"}

    @app.get(
        "/assignments/{assignment_id}",
        response_model=AssignmentView,
        responses=_errors(401, 403, 404),
        tags=["assignments"],
    )
    def get_assignment(assignment_id: AssignmentId, token: Reader) -> Any:
        """An assignment: last contact, next reminder due date, recent reminders."""
        return assignments.assignment(assignment_id)

    @app.put(
        "/assignments/{assignment_id}/last-contact-date",
        response_model=CorrectedAssignment,
        responses=_errors(401, 403, 404),
        tags=["assignments"],
    )
    def correct_last_contact_date(
        assignment_id: AssignmentId, body: LastContactCorrection, token: Corrector
    ) -> Any:
        """Correct last_contact_date by hand; audited with the token's name and the reason."""
        result = assignments.correct_last_contact_date(
            assignment_id, body.last_contact_date, body.reason, token_name=token.name
        )
        log.info(
            "token %r corrected last_contact_date of assignment %s: %s -> %s",
            token.name,
            assignment_id,
            result["correction"]["old_value"],
            result["correction"]["new_value"],
        )
        return result

    @app.get("/runs", response_model=RunsPage, responses=_errors(401, 403), tags=["runs"])
    def list_runs(
        token: Reader,
        status: Annotated[
            Literal["running", "success", "skipped", "failed", "abandoned"] | None,
            Query(description="Only runs with this status."),
        ] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Any:
        """The execution log, newest first."""
        return _page(runlog.recent(limit=limit, offset=offset, status=status), limit, offset)

    @app.get("/lock", response_model=LockStatus, responses=_errors(401, 403), tags=["runs"])
    def lock_status(token: Reader) -> Any:
        """The run lock: free, or who holds it."""
        return lock_state(lock_holder(url))

    @app.get("/audit", response_model=AuditPage, responses=_errors(401, 403), tags=["audit"])
    def list_audit(
        token: Reader,
        assignment_id: Annotated[
            int | None, Query(ge=1, le=BIGINT_MAX, description="Only this assignment.")
        ] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Any:
        """Manual corrections, newest first."""
        items = assignments.audit(limit=limit, offset=offset, assignment_id=assignment_id)
        return _page(items, limit, offset)

    return app
