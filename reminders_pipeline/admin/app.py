"""The admin API: a small FastAPI app over the reminders database.

Routes (routers/) are thin: they authenticate (auth.py), validate (models.py) and
call the services (AssignmentAdminService, TokenStore, RunLog, the lock holder).
Every error body says what was wrong (handlers.py): {"detail": "..."} for
401/403/404/503, and for 422 FastAPI's list of {loc, msg, type} whose loc names
the field, plus a one-line "message".
"""

from __future__ import annotations

from fastapi import FastAPI

from reminders_pipeline.admin.deps import AdminServices
from reminders_pipeline.admin.handlers import install_error_handlers
from reminders_pipeline.admin.routers import assignments, audit, health, runs
from reminders_pipeline.settings import ReminderSettings


def create_app(url: str, settings: ReminderSettings | None = None) -> FastAPI:
    """The admin API over the reminders database at `url`."""
    app = FastAPI(
        title="reminders admin API",
        version="1",
        description=(
            "Read the reminders job's state and correct an assignment's last contact date. "
            "Authenticate with `Authorization: Bearer <token>` (`reminders admin create-token`); "
            "scopes: `read` for GET, `correct` for PUT."
        ),
    )
    app.state.services = AdminServices.build(url, settings or ReminderSettings.from_env())
    install_error_handlers(app)
    for module in (health, assignments, runs, audit):
        app.include_router(module.router)
    return app
