"""Fixtures for the sensor tests: a test instance, a real local webhook, the resources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dagster import DagsterInstance, instance_for_test

from reminders_pipeline.orchestration.alert_resource import AlertResource
from reminders_pipeline.orchestration.resources import RemindersDatabaseResource
from tests.helpers.alert_servers import WebhookServer


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
