"""Error bodies that say what was wrong: {"detail": ...}, and for 422 the fields at fault."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

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

    @app.exception_handler(AssignmentClosed)
    async def closed(request: Request, exc: AssignmentClosed) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(DatabaseError)
    async def database_error(request: Request, exc: DatabaseError) -> JSONResponse:
        status, detail, retry_after = database_answer(exc)
        log.warning("admin API: %s %s: %s", request.method, request.url.path, exc)
        if retry_after is None:
            return JSONResponse(status_code=status, content={"detail": detail})
        return _retry(status, detail, retry_after)


def database_answer(exc: DatabaseError) -> tuple[int, str, int | None]:
    """Status, detail and Retry-After for a database error: every wait is bounded
    (db/pool.py), and each bound has its own clear answer."""
    if exc.sqlstate == LOCK_NOT_AVAILABLE:
        return 409, "the assignment is being changed by another transaction", 1
    if exc.sqlstate == QUERY_CANCELED:
        return 503, "the database took too long to answer", 5
    if isinstance(exc, DatabaseBusy):
        return 503, "every database connection of the admin API is busy", 1
    if isinstance(exc, DatabaseUnavailable):
        return 503, "the reminders database is unavailable", 5
    return 500, "database error", None


def _retry(status: int, detail: str, after_s: int) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"detail": detail}, headers={"Retry-After": str(after_s)}
    )
