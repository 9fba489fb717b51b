"""The services the routes use, built once per app and reached through a dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from reminders_pipeline.admin.tokens import TokenStore
from reminders_pipeline.contacts.corrections import AssignmentAdminService
from reminders_pipeline.core.runlog import RunLog
from reminders_pipeline.db.connector import Database
from reminders_pipeline.settings import ReminderSettings


@dataclass(frozen=True)
class AdminServices:
    url: str
    db: Database
    tokens: TokenStore
    assignments: AssignmentAdminService
    runlog: RunLog

    @classmethod
    def build(cls, url: str, settings: ReminderSettings) -> AdminServices:
        db = Database(url)
        return cls(url, db, TokenStore(db), AssignmentAdminService(db, settings), RunLog(db))


def _services(request: Request) -> AdminServices:
    return request.app.state.services


Services = Annotated[AdminServices, Depends(_services)]
