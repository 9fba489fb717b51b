"""Fixtures for acceptance tests: a dispatch gate, a real `dagster dev` and its alert webhook."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.alert_servers import WebhookServer
from tests.helpers.dagster_dev import REPO, Dagster, running_dagster_dev
from tests.helpers.runs import NotificationsGate


@pytest.fixture
def dagster_yaml(reminders_env: dict[str, str]) -> Path:
    """The instance config the `dagster_dev` fixture runs with: the shipped one.
    A test module may override this fixture to change a setting."""
    path = Path(reminders_env["DAGSTER_HOME"]) / "dagster.yaml"
    shutil.copy(REPO / "dagster.yaml", path)
    return path


@pytest.fixture
def alert_webhook() -> Iterator[WebhookServer]:
    """Where the alerts of `dagster_dev`'s sensors go."""
    with WebhookServer() as server:
        yield server


@pytest.fixture
def dagster_dev(
    reminders_env: dict[str, str], tmp_path: Path, alert_webhook: WebhookServer, dagster_yaml: Path
) -> Iterator[Dagster]:
    """A real `dagster dev` on this test's database, sensors every few seconds."""
    with running_dagster_dev(reminders_env, tmp_path, alert_webhook.url(), dagster_yaml) as dagster:
        yield dagster


@pytest.fixture
def notifications_gate(db_url: str) -> Iterator[Callable[[], NotificationsGate]]:
    gates: list[NotificationsGate] = []

    def close_gate() -> NotificationsGate:
        gate = NotificationsGate(db_url)
        gates.append(gate)
        return gate

    try:
        yield close_gate
    finally:
        for gate in gates:
            gate.open()
