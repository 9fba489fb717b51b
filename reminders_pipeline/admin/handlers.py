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
        # Every wait is bounded (db/pool.py); each bound gets its own clear answer.
        if exc.sqlstate == LOCK_NOT_AVAILABLE:
            log.warning("admin API: %s %s: %s", request.method, request.url.path, exc)
            return _retry(409, "the assignment is being changed by another transaction", 1)
        if exc.sqlstate == QUERY_CANCELED:
            log.warning("admin API: %s %s: %s", request.method, request.url.path, exc)
            return _retry(503, "the database took too long to answer", 5)
        if isinstance(exc, DatabaseBusy):
            log.warning("admin API: %s", exc)
            return _retry(503, "the admin API is at its database connection limit", 1)
        log.error("admin API: %s", exc)
        if isinstance(exc, DatabaseUnavailable):
            return _retry(503, "the reminders database is unavailable", 5)
        return JSONResponse(status_code=500, content={"detail": "database error"})


def _retry(status: int, detail: str, after_s: int) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"detail": f"{detail}; retry in {after_s} s"},
        headers={"Retry-After": str(after_s)},
    )
