"""Override one setting in a test, past its bounds if the test needs it (a 1 s grace)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from reminders_pipeline import settings


def override(monkeypatch: pytest.MonkeyPatch, name: str, value: Any) -> None:
    """Make settings.<name>.get() return value for this test (its variable unset).

    A record's field (ReminderSettings.batch_size, ...) reads its setting where it was
    declared: set the variable instead (monkeypatch.setenv).
    """
    setting = getattr(settings, name)
    monkeypatch.delenv(setting.name, raising=False)
    monkeypatch.setattr(settings, name, dataclasses.replace(setting, default=value))
