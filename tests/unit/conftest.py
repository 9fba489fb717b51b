"""The sensors' unit tests: an in-memory Dagster instance, the fake reads, recorded alerts."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from tests.helpers.sensor_fakes import FakeReads, SentAlerts


@pytest.fixture
def instance() -> DagsterInstance:
    return DagsterInstance.ephemeral()


@pytest.fixture
def reads() -> FakeReads:
    return FakeReads()


@pytest.fixture
def alerts() -> SentAlerts:
    return SentAlerts()
