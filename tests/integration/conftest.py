"""Fixtures for integration tests: logins in the project's roles; for the sensor tests a
test instance, a real local webhook and the resources."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from dagster import DagsterInstance, instance_for_test

from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.resources import RemindersDatabaseResource
from tests.helpers.alert_servers import WebhookServer
from tests.helpers.logins import ROLES


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.fixture
def resources(db_url: str, webhook: WebhookServer) -> dict[str, Any]:
    return {
        "reminders_db": RemindersDatabaseResource(database_url=db_url),
        "alerts": AlertResource(
            webhook_url=webhook.url(), ui_base_url="http://dagster.test", backoff_factor_s=0.01
        ),
    }


@pytest.fixture
def login(db_url: str) -> Iterator[Callable[[str | None], str]]:
    """make(role) -> a new LOGIN that is a member of `role` (None: of no role). Roles are
    the server's: each test makes its own and drops them (and what they own here) after."""
    made: list[str] = []

    def make(role: str | None) -> str:
        name = f"reminders_login_t{uuid.uuid4().hex[:8]}"
        member = f" IN ROLE {role}" if role else ""
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f'CREATE ROLE "{name}" LOGIN{member}')
        made.append(name)
        return name

    yield make
    with psycopg.connect(db_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP OWNED BY "{name}"')
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')


@pytest.fixture
def logins(login: Callable[[str | None], str]) -> dict[str, str]:
    """A LOGIN member of each of the project's roles, by role."""
    return {role: login(role) for role in ROLES}
