"""Error bodies that say what was wrong: {"detail": ...}, and for 422 the fields at fault."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from reminders_pipeline.admin.asgi import Refusal
from reminders_pipeline.db.pool import LOCK_NOT_AVAILABLE, QUERY_CANCELED, DatabaseBusy
from reminders_pipeline.errors import (
    AssignmentClosed,
    AssignmentNotFound,
    CorrectionRefused,
    DatabaseError,
    DatabaseUnavailable,
)

log = logging.getLogger("reminders_pipeline.admin")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _unprocessable(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers 400 for a body it cannot decode (not UTF-8, say); our
        # routes never raise 400, so it is always that: an invalid body, a 422.
        if exc.status_code == 400:
            return _unprocessable(
                [{"loc": ["body"], "msg": "is not valid JSON text", "type": "json_invalid"}]
            )
        return await http_exception_handler(request, exc)

    @app.exception_handler(CorrectionRefused)
    async def correction_refused(request: Request, exc: CorrectionRefused) -> JSONResponse:
        return _unprocessable(
            [{"loc": ["body", exc.field], "msg": exc.detail, "type": "value_error"}]
        )

    @app.exception_handler(AssignmentNotFound)
    async def not_found(request: Request, exc: AssignmentNotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(AssignmentClosed)
    async def closed(request: Request, exc: AssignmentClosed) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(DatabaseError)
    async def database_error(request: Request, exc: DatabaseError) -> JSONResponse:
        log.warning("admin API: %s %s: %s", request.method, request.url.path, exc)
        refusal = database_refusal(exc)
        return JSONResponse({"detail": refusal.detail}, refusal.status, refusal.headers)


def _unprocessable(errors: Sequence[Mapping[str, Any]]) -> JSONResponse:
    """422: each field at fault (loc, msg and type; never the input), and all in one line."""
    detail = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in errors
    ]
    message = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in detail
    )
    return JSONResponse(status_code=422, content={"detail": detail, "message": message})


def database_refusal(exc: DatabaseError) -> Refusal:
    """The answer to a database error: every wait is bounded (db/pool.py), and each
    bound has its own clear answer, with Retry-After when a retry may succeed."""
    if exc.sqlstate == LOCK_NOT_AVAILABLE:
        return _retry(409, "the assignment is being changed by another transaction", 1)
    if exc.sqlstate == QUERY_CANCELED:
        return _retry(503, "the database took too long to answer", 5)
    if isinstance(exc, DatabaseBusy):
        return _retry(503, "every database connection of the admin API is busy", 1)
    if isinstance(exc, DatabaseUnavailable):
        return _retry(503, "the reminders database is unavailable", 5)
    return Refusal(500, "database error")


def _retry(status: int, detail: str, after_s: int) -> Refusal:
    return Refusal(status, detail, {"Retry-After": str(after_s)})
