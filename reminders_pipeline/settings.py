"""Settings read from the environment, validated once, with sane defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reminders_pipeline.errors import ConfigError

DEFAULT_TIMEZONE = "Europe/Oslo"


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def migration_lock_wait_s() -> int:
    """REMINDERS_MIGRATION_LOCK_WAIT_S: how long `reminders db upgrade` waits for a run
    in progress to let go of the run lock before it refuses (0: refuse at once)."""
    return _int_env("REMINDERS_MIGRATION_LOCK_WAIT_S", 60, minimum=0)


def timezone_from_env() -> str:
    name = os.environ.get("REMINDERS_TIMEZONE") or DEFAULT_TIMEZONE
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"REMINDERS_TIMEZONE is not a known timezone: {name!r}") from None
    return name


@dataclass(frozen=True)
class ReminderSettings:
    """How due reminders are computed and written."""

    timezone: str = DEFAULT_TIMEZONE
    default_interval_days: int = 10
    max_reminders_per_silence: int = 3
    batch_size: int = 50_000

    @classmethod
    def from_env(cls) -> ReminderSettings:
        return cls(
            timezone=timezone_from_env(),
            default_interval_days=_int_env("REMINDERS_DEFAULT_INTERVAL_DAYS", 10),
            max_reminders_per_silence=_int_env("REMINDERS_MAX_PER_SILENCE", 3),
            batch_size=_int_env("REMINDERS_BATCH_SIZE", 50_000),
        )

    def today(self) -> date:
        """Today in the organisation's timezone, never the server's."""
        return datetime.now(ZoneInfo(self.timezone)).date()


def parse_as_of(value: str) -> date:
    """Parse a YYYY-MM-DD date, with an error that names the problem."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"as-of date must be YYYY-MM-DD, got {value!r}") from None
