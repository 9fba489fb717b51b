"""`reminders mentor` and `reminders deliver` (in-process, through click's runner)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from reminders_pipeline.cli import cli
from reminders_pipeline.db.connector import Database
from reminders_pipeline.errors import ConfigError
from tests.helpers.data import db_rows
from tests.helpers.delivery_servers import SECRET, ReminderReceiver
from tests.helpers.outbox import due_reminders


def test_mentor_channels_then_deliver_prints_this_invocations_counts(
    db: Database, reminders_env: dict[str, str], monkeypatch
) -> None:
    first, second = due_reminders(db, 2)  # in-app only, by default
    mentor = db_rows(db, "SELECT mentor_id FROM assignments WHERE id = %s", (first,))[0]
    runner = CliRunner()
    shown = runner.invoke(
        cli, ["mentor", str(mentor["mentor_id"]), "--channels", "webhook,in_app", "--language",
              "en", "--json"],
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["channels"] == ["webhook", "in_app"]

    # Configured for a channel nobody set up: a clear error, nothing lost.
    result = runner.invoke(cli, ["deliver", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "sent": 0,
        "retry": 0,
        "dead": 0,
        "cancelled": 0,
        "late": 0,
    }
    assert "1 webhook deliveries are waiting: the webhook channel is not configured" in (
        result.stderr
    )

    with ReminderReceiver() as receiver:
        monkeypatch.setenv("REMINDERS_WEBHOOK_URL", receiver.url())
        monkeypatch.setenv("REMINDERS_WEBHOOK_SECRET", SECRET)
        result = runner.invoke(cli, ["deliver", "--json"])
        again = runner.invoke(cli, ["deliver", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "sent": 1,
        "retry": 0,
        "dead": 0,
        "cancelled": 0,
        "late": 0,
    }
    assert json.loads(again.stdout) == {"sent": 0, "retry": 0, "dead": 0, "cancelled": 0, "late": 0}
    assert len(receiver.requests) == 1


def test_bad_mentor_settings_are_refused_by_name(db: Database, reminders_env: dict[str, str]):
    runner = CliRunner()
    due_reminders(db, 1)
    for args, message in [
        (["--channels", "sms"], "channels must be a comma list of in_app, email, webhook"),
        (["--language", "de"], "language must be one of nb, en or default"),
    ]:
        result = runner.invoke(cli, ["mentor", "1", *args])
        assert isinstance(result.exception, ConfigError) and message in str(result.exception)
    result = runner.invoke(cli, ["mentor", "999", "--language", "en"])
    assert "no mentor with id 999" in str(result.exception)
    assert db_rows(db, "SELECT channels, language FROM mentors") == [
        {"channels": None, "language": None}
    ]


def test_deliver_refuses_a_secret_that_is_not_whsec_at_start_and_sends_nothing(
    db: Database, reminders_env: dict[str, str], monkeypatch
) -> None:
    due_reminders(db, 1, channels=["webhook"])
    with ReminderReceiver() as receiver:
        monkeypatch.setenv("REMINDERS_WEBHOOK_URL", receiver.url())
        monkeypatch.setenv("REMINDERS_WEBHOOK_SECRET", "test-webhook-secret")
        result = CliRunner().invoke(cli, ["deliver", "--json"])
    assert result.exit_code != 0
    assert "REMINDERS_WEBHOOK_SECRET must be whsec_" in str(result.exception) + result.output
    assert receiver.requests == []
    assert db_rows(db, "SELECT state, attempts FROM deliveries") == []  # not even expanded
