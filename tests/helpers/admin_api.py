"""Admin API test helpers: tokens with chosen scopes, assignments with chosen dates."""

from __future__ import annotations

from datetime import date, timedelta

from reminders_pipeline.admin.tokens import TokenStore
from reminders_pipeline.db.connector import Database
from reminders_pipeline.settings import AdminApiSettings, ReminderSettings
from tests.helpers.data import add_assignment, add_mentor

SETTINGS = ReminderSettings()
# Short waits, so a test that meets one is quick.
FAST = AdminApiSettings(pool_timeout_s=1.0, lock_timeout_ms=300)
TODAY = SETTINGS.today()
STARTED = TODAY - timedelta(days=100)
LAST = TODAY - timedelta(days=30)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_tokens(db: Database) -> dict[str, str]:
    """One token per scope set: 'reader', 'corrector', 'both'; and a revoked one."""
    store = TokenStore(db)
    tokens = {
        "reader": store.create("reader", ["read"]),
        "corrector": store.create("corrector", ["correct"]),
        "both": store.create("ops", ["read", "correct"]),
        "revoked": store.create("old", ["read", "correct"]),
    }
    store.revoke("old")
    return tokens


def make_assignment(db: Database, last: date = LAST, **kwargs) -> int:
    kwargs.setdefault("started_on", STARTED)
    return add_assignment(db, add_mentor(db), last, **kwargs)
