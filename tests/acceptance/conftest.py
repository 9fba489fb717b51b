"""Fixtures for acceptance tests: `reminders` child processes and a dispatch gate."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.runs import NotificationsGate


@pytest.fixture
def dagster_yaml(reminders_env: dict[str, str]) -> Path:
    """The instance config the `dagster_dev` fixture (test_daemon.py) runs with: the
    shipped one. A test module may override this fixture to change a setting."""
    path = Path(reminders_env["DAGSTER_HOME"]) / "dagster.yaml"
    shutil.copy(Path(__file__).resolve().parents[2] / "dagster.yaml", path)
    return path


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
