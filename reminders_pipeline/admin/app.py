"""The admin API: a small FastAPI app over the reminders database.

Every request passes the guard (guard.py) before any route; a route is thin: it
validates (models.py) and calls the services (deps.py) on a bounded pool. Every error
body says what was wrong (handlers.py, query.py), and the OpenAPI document lists each
status every route can answer (models.error_responses). /docs is Swagger UI served
from an installed package (no CDN).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from reminders_pipeline.admin.deps import AdminServices
from reminders_pipeline.admin.guard import RequestGuard
from reminders_pipeline.admin.handlers import install_error_handlers
from reminders_pipeline.admin.query import reject_unknown_query
from reminders_pipeline.admin.routers import assignments, health, runs
from reminders_pipeline.admin.scrub import install_access_log_scrubber
from reminders_pipeline.settings import AdminApiSettings, ReminderSettings


def create_app(
    url: str, settings: ReminderSettings, limits: AdminApiSettings | None = None
) -> FastAPI:
    """The admin API over the reminders database at `url`."""
    limits = limits or AdminApiSettings.from_env()
    services = AdminServices.build(url, settings, limits)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    # Swagger UI from fastapi_offline's own copy, or no /docs at all.
    make = FastAPIOffline if limits.docs else FastAPI
    app = make(
        title="reminders admin API",
        version="1",
        description=(
            "Read the reminders job's state and correct an assignment's last contact date. "
            "Authenticate with `Authorization: Bearer <token>` (`reminders admin create-token`); "
            "scopes: `read` for GET, `correct` for PUT."
        ),
        docs_url="/docs" if limits.docs else None,
        redoc_url=None,
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.services = services
    app.add_middleware(RequestGuard, services=services)
    install_error_handlers(app)
    install_access_log_scrubber()
    for module in (health, assignments, runs):
        app.include_router(module.router)
    return app
