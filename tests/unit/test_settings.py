import pytest

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
