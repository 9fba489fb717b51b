import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reminders_pipeline import settings
from reminders_pipeline.errors import ConfigError
from reminders_pipeline.settings import ReminderSettings, parse_as_of


def test_defaults(monkeypatch):
    for name in (
        "REMINDERS_TIMEZONE",
        "REMINDERS_DEFAULT_INTERVAL_DAYS",
        "REMINDERS_MAX_PER_SILENCE",
        "REMINDERS_BATCH_SIZE",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = ReminderSettings.from_env()
    assert settings.timezone == "Europe/Oslo"
    assert settings.default_interval_days == 10


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("REMINDERS_TIMEZONE", "Mars/Olympus", "not a known timezone"),
        ("REMINDERS_DEFAULT_INTERVAL_DAYS", "ten", "must be a whole number"),
        ("REMINDERS_BATCH_SIZE", "0", "must be at least 1"),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"{name}.*{message}|{message}"):
        ReminderSettings.from_env()


def test_bad_as_of_is_a_clear_error():
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        parse_as_of("29/11/2026")


def test_malformed_database_url_error_never_quotes_the_password():
    from reminders_pipeline.db.url import validate_url

    with pytest.raises(ConfigError) as caught:
        validate_url("postgresql://user:pa%zzsecret@host/db")
    assert "REMINDERS_DATABASE_URL" in str(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("field", ["default_interval_days", "max_reminders_per_silence"])
def test_resource_settings_below_one_are_refused(field):
    from reminders_pipeline.orchestration.resources import ReminderRunResource

    with pytest.raises(ConfigError, match=f"{field} must be at least 1"):
        ReminderRunResource(**{field: 0}).settings()


REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "reminders_pipeline"


def test_readme_configuration_table_is_the_registry() -> None:
    readme = (REPO / "README.md").read_text()
    start, end = "<!-- settings-table:start -->\n", "\n<!-- settings-table:end -->"
    table = readme[readme.index(start) + len(start) : readme.index(end)]
    assert table == settings.markdown_table(), (
        "README's configuration table differs from reminders_pipeline.settings: paste "
        "settings.markdown_table() between the markers"
    )


def test_every_reminders_variable_in_the_code_is_registered() -> None:
    used = set()
    for path in PACKAGE.rglob("*.py"):
        used |= set(re.findall(r"\bREMINDERS_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    assert used - set(settings.REGISTRY) == set()


def test_only_the_settings_module_reads_the_environment() -> None:
    readers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if re.search(r"\bos\.(environ|getenv)\b", path.read_text())
    )
    assert readers == ["settings/__init__.py", "settings/setting.py"]


def test_nothing_is_parsed_at_import() -> None:
    probe = (
        "from reminders_pipeline import settings\n"
        "from reminders_pipeline.errors import ConfigError\n"
        "try:\n    settings.SKIP_ALERT_AFTER.get()\n"
        "except ConfigError as exc:\n    print(exc)"
    )
    env = {**os.environ, "REMINDERS_SKIP_ALERT_AFTER": "many"}
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("REMINDERS_SKIP_ALERT_AFTER must be a whole number")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("REMINDERS_SCHEDULE_HOUR", "24", "must be between 0 and 23, got 24"),
        ("REMINDERS_ALERT_SMTP_PORT", "smtp", "must be a whole number"),
        ("REMINDERS_ZOMBIE_SENSOR", "maybe", "must be on or off"),
        ("REMINDERS_SENSORS_DEFAULT_STATUS", "paused", "must be one of"),
        ("REMINDERS_PARTITIONS_START", "2024/01/01", "must be a date as YYYY-MM-DD"),
    ],
)
def test_every_kind_of_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{name} {message}"):
        settings.REGISTRY[name].get()
