"""Admin API test helpers: tokens with chosen scopes, assignments with chosen dates, and a
served API (`reminders admin serve` as a child process)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import httpx
import pytest

from reminders_pipeline.admin.tokens import TokenStore
from reminders_pipeline.db.connector import Database
from reminders_pipeline.settings import AdminApiSettings, ReminderSettings
from tests.helpers.data import add_assignment, add_mentor
from tests.helpers.ports import free_port
from tests.helpers.runs import Child, RemindersCli, wait_for

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


@dataclass(frozen=True)
class Server:
    """A served admin API: its address, a token with both scopes, its process."""

    base_url: str
    token: str
    child: Child

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])


def create_token(reminders_cli: RemindersCli, name: str, *scopes: str) -> str:
    """`reminders admin create-token`; the token it prints."""
    args = ["admin", "create-token", name]
    for scope in scopes:
        args += ["--scope", scope]
    done = reminders_cli(*args, timeout=60)
    assert done.returncode == 0, done.describe()
    return done.stdout.strip()


@contextlib.contextmanager
def serving(reminders_cli: RemindersCli, env: dict[str, str]) -> Iterator[Server]:
    """`reminders admin serve` on a free port with `env` added, answering /healthz, and a
    token named 'ops' with both scopes; the server is stopped when the block ends."""
    token = create_token(reminders_cli, "ops", "read", "correct")
    port = free_port()
    child = reminders_cli.start(
        "admin", "serve", "--host", "127.0.0.1", "--port", str(port), env=env
    )
    base_url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if not child.alive():
            pytest.fail(f"the admin server exited:\n{child.finished().describe()}")
        try:
            return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=60, what="the admin server to answer /healthz")
    try:
        yield Server(base_url, token, child)
    finally:
        child.close()
