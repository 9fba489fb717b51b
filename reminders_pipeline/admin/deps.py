"""The services the routes use, built once per app and reached through a dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from reminders_pipeline.admin.ratelimit import FailedAuthLimiter
from reminders_pipeline.admin.tokens import TokenStore
from reminders_pipeline.contacts.corrections import AssignmentAdminService
from reminders_pipeline.core.runlog import RunLog
from reminders_pipeline.db.pool import PooledDatabase
from reminders_pipeline.settings import AdminApiSettings, ReminderSettings

# /healthz has a connection of its own: a pool busy with stuck corrections does not
# make the service look dead, and a ping never waits behind them.
HEALTH_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class AdminServices:
    db: PooledDatabase
    health_db: PooledDatabase
    tokens: TokenStore
    assignments: AssignmentAdminService
    runlog: RunLog
    limits: AdminApiSettings
    auth_failures: FailedAuthLimiter

    @classmethod
    def build(cls, url: str, settings: ReminderSettings, limits: AdminApiSettings) -> AdminServices:
        db = PooledDatabase(
            url,
            max_size=limits.pool_max,
            pool_timeout_s=limits.pool_timeout_s,
            lock_timeout_ms=limits.lock_timeout_ms,
            statement_timeout_ms=limits.statement_timeout_ms,
        )
        health_db = PooledDatabase(
            url,
            max_size=1,
            pool_timeout_s=HEALTH_TIMEOUT_S,
            lock_timeout_ms=int(HEALTH_TIMEOUT_S * 1000),
            statement_timeout_ms=int(HEALTH_TIMEOUT_S * 1000),
            application_name="reminders-admin-health",
        )
        return cls(
            db,
            health_db,
            TokenStore(db),
            AssignmentAdminService(db, settings),
            RunLog(db),
            limits,
            FailedAuthLimiter(limits.auth_failures_per_minute),
        )

    def close(self) -> None:
        self.db.close()
        self.health_db.close()


def _services(request: Request) -> AdminServices:
    return request.app.state.services


Services = Annotated[AdminServices, Depends(_services)]
