"""Every setting of the project: the REMINDERS_* variables, in one registry.

Each variable has one `Setting`: its name, type, default, bounds and a one-line doc.
Nothing is read at import: `Setting.get()` parses the environment when it is
called, and a bad value raises ConfigError naming the variable. This is the only
package that reads `os.environ`. The README's configuration table is generated from
the registry (`markdown_table()`; a test holds the two equal).

Values that Dagster fixes when the code location loads (cron, partitions start, sensor
intervals and default status, the job's max runtime tag) are read while the definitions
are built; what ticks, sensors and runs use is read when it happens.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from reminders_pipeline.settings.admin import AdminApiSettings as AdminApiSettings
from reminders_pipeline.settings.setting import (
    FromEnv,
    Setting,
    bound,
    choice,
    collect,
    integer,
    parse_date,
    parse_list,
    parse_path,
    parse_timezone,
    string,
    switch,
)
from reminders_pipeline.settings.setting import parse_as_of as parse_as_of

# ---------------------------------------------------------------- the registry

DATABASE_URL = string(
    "REMINDERS_DATABASE_URL",
    None,
    "the reminders database (libpq URL or key=value string): direct or a session-mode "
    "pooler; behind a transaction-mode pooler `reminders run` uses `REMINDERS_LOCK_SCOPE`",
    default_text="embedded PostgreSQL in `$REMINDERS_HOME/pgdata`",
    secret=True,
)
ENV = string(
    "REMINDERS_ENV",
    None,
    "`production` forbids the embedded database whatever the Dagster instance",
)
HOME = Setting(
    "REMINDERS_HOME",
    "path",
    None,
    "where the embedded server and the CLI's default Dagster home live",
    parse_path,
    default_text="`./.reminders`",
)
TIMEZONE = Setting(
    "REMINDERS_TIMEZONE",
    "timezone",
    "Europe/Oslo",
    'the organisation\'s timezone: "today", partition dates, the schedule',
    parse_timezone,
)
DEFAULT_INTERVAL_DAYS = integer(
    "REMINDERS_DEFAULT_INTERVAL_DAYS", 10, "reminder interval for assignments without their own", 1
)
MAX_PER_SILENCE = integer("REMINDERS_MAX_PER_SILENCE", 3, "most reminders for one silence", 1)
BATCH_SIZE = integer(
    "REMINDERS_BATCH_SIZE", 50_000, "active assignments per dispatch batch (one commit each)", 1
)
PARTITIONS_START = Setting(
    "REMINDERS_PARTITIONS_START",
    "date",
    # Recent, because the UI's Partitions tabs draw every partition and warn above
    # 1,000 (about 2028-09 from this start); move it forward when that nears.
    "2026-01-01",
    "the first day of the job's daily partitions (fixed, so partition sets are stable)",
    parse_date,
)
MAX_RUNTIME_S = integer(
    "REMINDERS_MAX_RUNTIME_S",
    4 * 60 * 60,
    "the job's `dagster/max_runtime` tag (run monitoring's hard stop)",
    1,
)
MIGRATION_LOCK_WAIT_S = integer(
    "REMINDERS_MIGRATION_LOCK_WAIT_S",
    60,
    "how long `reminders db upgrade` waits for a run holding the run lock before it "
    "refuses (0: refuse at once)",
    0,
)
SCHEDULE_HOUR = integer("REMINDERS_SCHEDULE_HOUR", 6, "hour of the daily schedule's tick", 0, 23)
SCHEDULE_MINUTE = integer(
    "REMINDERS_SCHEDULE_MINUTE", 0, "minute of the daily schedule's tick", 0, 59
)
OVERLAP_POLICY = choice(
    "REMINDERS_OVERLAP_POLICY",
    "skip",
    "what a tick does while a run is queued or in progress (docs/decisions/overlap-policy.md)",
    ("skip", "queue"),
)
SENSOR_INTERVAL_S = integer(
    "REMINDERS_SENSOR_INTERVAL_S", 60, "how often every sensor evaluates (seconds)", 5, 3600
)
SENSORS_DEFAULT_STATUS = choice(
    "REMINDERS_SENSORS_DEFAULT_STATUS",
    "running",
    "the sensors' status at first deployment",
    ("running", "stopped"),
)
LONG_RUN_MINUTES = integer(
    "REMINDERS_LONG_RUN_MINUTES", 30, "long-run sensor: alert past this many minutes", 1, 7 * 1440
)
LONG_RUN_S = integer(
    "REMINDERS_LONG_RUN_S",
    None,  # REMINDERS_LONG_RUN_MINUTES
    "long-run sensor: the same threshold in seconds (wins when set)",
    10,
    7 * 24 * 60 * 60,
    default_text="`REMINDERS_LONG_RUN_MINUTES` × 60",
)
SKIP_ALERT_AFTER = integer(
    "REMINDERS_SKIP_ALERT_AFTER",
    2,
    "repeated-skips sensor: alert after this many in a row",
    1,
    1000,
)
# A lock taken more recently than this may be a run that has not written its 'running'
# row yet. Counted from the holder's state_change (pg_locks keeps no acquisition time).
STALE_LOCK_GRACE_S = integer(
    "REMINDERS_STALE_LOCK_GRACE_S",
    60,
    "stale-lock sensor: a lock taken more recently (by state_change) may be a run starting",
    0,
    3600,
)
ZOMBIE_SENSOR = switch(
    "REMINDERS_ZOMBIE_SENSOR",
    True,
    "`off` turns the zombie sensor off (stopped, and idle if started)",
)
# Far above the seconds a live run spends without a session (core/zombies.py).
ZOMBIE_GRACE_S = integer(
    "REMINDERS_ZOMBIE_GRACE_S",
    300,
    "zombie sensor: how long a run may have no reminders session",
    10,
    24 * 60 * 60,
)
ZOMBIE_INTERVAL_S = integer(
    "REMINDERS_ZOMBIE_INTERVAL_S",
    None,  # REMINDERS_SENSOR_INTERVAL_S
    "the zombie sensor's poll interval (seconds)",
    5,
    3600,
    default_text="`REMINDERS_SENSOR_INTERVAL_S`",
)
ALERT_SLACK_WEBHOOK_URL = string(
    "REMINDERS_ALERT_SLACK_WEBHOOK_URL",
    None,
    'Slack-compatible incoming webhook for alerts (`{"text": ...}`; Mattermost too)',
    secret=True,
)
ALERT_WEBHOOK_URL = string(
    "REMINDERS_ALERT_WEBHOOK_URL",
    None,
    "generic JSON webhook for alerts: `{source, kind, title, text, facts, link}`",
    secret=True,
)
ALERT_SMTP_HOST = string("REMINDERS_ALERT_SMTP_HOST", None, "SMTP server for alert emails")
ALERT_SMTP_PORT = integer("REMINDERS_ALERT_SMTP_PORT", 25, "its port", 1, 65535)
ALERT_EMAIL_FROM = string(
    "REMINDERS_ALERT_EMAIL_FROM", "reminders@localhost", "sender of alert emails"
)
ALERT_EMAIL_TO = Setting(
    "REMINDERS_ALERT_EMAIL_TO",
    "list",
    [],
    "recipients of alert emails, comma-separated",
    parse_list,
)
ALERT_SMTP_USERNAME = string("REMINDERS_ALERT_SMTP_USERNAME", None, "SMTP login")
ALERT_SMTP_PASSWORD = string("REMINDERS_ALERT_SMTP_PASSWORD", None, "SMTP password", secret=True)
ALERT_SMTP_STARTTLS = switch("REMINDERS_ALERT_SMTP_STARTTLS", False, "STARTTLS before logging in")
ALERT_MAX_TRIES = integer(
    "REMINDERS_ALERT_MAX_TRIES", 3, "attempts per alert sink, with exponential backoff", 1, 20
)
DAGSTER_UI_URL = string(
    "REMINDERS_DAGSTER_UI_URL", "http://localhost:3000", "base URL of the links to runs"
)

# One registry, one way in: every Setting of this module, then of each module of the
# package (one per concept), a new one included without a list. Each Setting is
# declared in one module and imported from there, never re-exported.
_SUBMODULES = [
    importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)
]
REGISTRY: dict[str, Setting[Any]] = collect([sys.modules[__name__], *_SUBMODULES])


def markdown_table() -> str:
    """The README's configuration table, from the registry."""
    lines = ["| variable | type | default | bounds | meaning |", "|---|---|---|---|---|"]
    for setting in REGISTRY.values():
        lines.append(
            f"| `{setting.name}` | {setting.kind} | {setting.describe_default()} "
            f"| {setting.describe_bounds()} | {setting.doc} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- derived values


def zombie_interval_s() -> int:
    value = ZOMBIE_INTERVAL_S.get()
    return SENSOR_INTERVAL_S.get() if value is None else value


def long_run_s() -> int:
    value = LONG_RUN_S.get()
    return LONG_RUN_MINUTES.get() * 60 if value is None else value


def is_production_env() -> bool:
    """REMINDERS_ENV=production (any case)."""
    return (ENV.get() or "").lower() == "production"


def embedded_home() -> Path:
    return HOME.get() or Path.cwd() / ".reminders"


def dagster_home() -> str | None:
    """DAGSTER_HOME, Dagster's own variable (read here, like every other setting)."""
    return os.environ.get("DAGSTER_HOME") or None


def child_environment(**overrides: str) -> dict[str, str]:
    """This process's environment with overrides, for a child process."""
    return {**os.environ, **overrides}


def use_dagster_home(path: Path) -> None:
    """Point this process (and Dagster) at an instance directory."""
    os.environ["DAGSTER_HOME"] = str(path)


@dataclass(frozen=True)
class ReminderSettings(FromEnv):
    """How due reminders are computed and written."""

    timezone: str = bound(TIMEZONE)
    default_interval_days: int = bound(DEFAULT_INTERVAL_DAYS)
    max_reminders_per_silence: int = bound(MAX_PER_SILENCE)
    batch_size: int = bound(BATCH_SIZE)

    def today(self) -> date:
        """Today in the organisation's timezone, never the server's."""
        return datetime.now(ZoneInfo(self.timezone)).date()
