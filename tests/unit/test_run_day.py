"""The day a one-call run may take, checked without Dagster as the partitions do."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reminders_pipeline.core.run_day import check_day
from reminders_pipeline.errors import ConfigError
from reminders_pipeline.settings import ReminderSettings


def test_today_and_the_first_partition_are_runnable(monkeypatch) -> None:
    monkeypatch.setenv("REMINDERS_PARTITIONS_START", "2026-01-01")
    settings = ReminderSettings()
    check_day(settings.today(), settings)
    check_day(settings.today().replace(year=2026, month=1, day=1), settings)


def test_a_future_day_or_one_before_the_partitions_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("REMINDERS_PARTITIONS_START", "2026-01-01")
    settings = ReminderSettings()
    with pytest.raises(ConfigError, match="no daily partition for .* to .* \\(today in"):
        check_day(settings.today() + timedelta(days=1), settings)
    with pytest.raises(ConfigError, match="as-of dates run from 2026-01-01"):
        check_day(settings.today().replace(year=2025, month=12, day=31), settings)
