"""Error bodies that say what was wrong: {"detail": ...}, and for 422 the fields at fault."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from reminders_pipeline.errors import AssignmentNotFound, CorrectionRefused, DatabaseUnavailable

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

    @app.exception_handler(DatabaseUnavailable)
    async def unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.error("admin API: %s", exc)
        return JSONResponse(
            status_code=503, content={"detail": "the reminders database is unavailable"}
        )
