"""The liveness bounds' logic: what one setting derives, and what a run says when they act."""

from __future__ import annotations

import pytest

from reminders_pipeline.core.run import ReminderRun
from reminders_pipeline.db.run_sessions import SessionBounds
from reminders_pipeline.entry import _command
from reminders_pipeline.errors import ConfigError, ConnectionLost, DatabaseUnavailable
from reminders_pipeline.settings import liveness
from reminders_pipeline.settings.liveness import LivenessSettings
from tests.helpers.run_fakes import (
    AS_OF,
    FakeLock,
    FakeRunLog,
    RecordingDispatcher,
    RecordingScheduler,
)


def test_every_bound_derives_from_the_silence_and_none_cuts_a_statement():
    bounds = SessionBounds(LivenessSettings(silence_s=120))
    server = bounds.server_settings(150000)
    assert server["idle_in_transaction_session_timeout"] == 120_000
    assert server["idle_session_timeout"] == 120_000
    assert server["tcp_user_timeout"] == 120_000
    # Keepalives end a vanished host within about half the bound: 30 + 3 x 10 s.
    assert (server["tcp_keepalives_idle"], server["tcp_keepalives_interval"]) == (30, 10)
    assert server["tcp_keepalives_count"] == 3
    assert not any("statement_timeout" in name for name in server)
    assert bounds.libpq_params()["tcp_user_timeout"] == 120_000
    assert LivenessSettings(silence_s=120).probe_interval_s == 30


def test_older_servers_get_only_the_bounds_they_have():
    server = SessionBounds(LivenessSettings(silence_s=60)).server_settings(130000)
    assert "idle_session_timeout" not in server
    assert "client_connection_check_interval" not in server
    assert server["idle_in_transaction_session_timeout"] == 60_000


class RecordingSession:
    server_version = 150000

    def __init__(self) -> None:
        self.sql: list[str] = []

    def execute(self, sql, params=None):
        self.sql.append(sql)


@pytest.mark.parametrize("local", [False, True])
def test_bounds_are_one_statement_session_wide_or_transaction_local(local):
    session = RecordingSession()
    SessionBounds(LivenessSettings(silence_s=10)).apply(session, local=local)  # type: ignore[arg-type]
    [sql] = session.sql
    assert sql.count("set_config(") >= 5
    assert (", true)" in sql) is local and (", false)" in sql) is not local
    # Inside a transaction idle_session_timeout never applies.
    assert ("idle_session_timeout" in sql) is not local


def test_silence_setting_is_bounded(monkeypatch):
    monkeypatch.setenv("REMINDERS_RUN_SILENCE_S", "2")
    with pytest.raises(ConfigError, match="REMINDERS_RUN_SILENCE_S"):
        LivenessSettings.from_env()
    monkeypatch.setenv("REMINDERS_RUN_SILENCE_S", "45")
    monkeypatch.setenv("REMINDERS_RUN_RECORD_RETRY_S", "7")
    assert LivenessSettings.from_env() == LivenessSettings(silence_s=45, record_retry_s=7)
    assert liveness.RUN_SILENCE_S.default == 120


@pytest.mark.parametrize(
    ("argv", "command"),
    [(["run", "--json"], "run"), (["-v", "run"], "run"), (["runs"], "runs"), ([], None)],
)
def test_the_entry_point_finds_the_command(argv, command):
    assert _command(argv) == command


class TrippedWatch:
    tripped: str | None = None

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def give_up_after(self, seconds: float, reason: str) -> None:
        pass


class SilentDispatcher(RecordingDispatcher):
    """The watch closed the lock session under the batch."""

    def __init__(self, watch: TrippedWatch) -> None:
        super().__init__()
        self.watch = watch

    def dispatch(self, as_of, run_row_id, *, transaction, before_batch, on_progress):
        self.watch.tripped = "the database answered nothing for 121s (REMINDERS_RUN_SILENCE_S=120)"
        raise ConnectionLost("database error: server closed the connection unexpectedly")


class UnreachableRunLog(FakeRunLog):
    def failed(self, row_id, error, counts=None):
        raise DatabaseUnavailable("cannot connect to the reminders database at db:5432")


def test_a_silent_server_fails_the_run_naming_the_silence_and_what_is_known():
    watch = TrippedWatch()
    runlog = UnreachableRunLog()
    run = ReminderRun(
        lock=FakeLock(free=True),
        runlog=runlog,
        scheduler=RecordingScheduler(),
        dispatcher=SilentDispatcher(watch),
        dagster_run_id="this-run",
        watch=watch,
    )
    with pytest.raises(ConnectionLost):
        run.execute(AS_OF)
    summary = run.summary
    assert summary is not None and summary.status == "failed"
    assert summary.error.startswith("the database answered nothing for 121s")
    assert "server closed the connection" in summary.error
    assert "row 1 stays 'running'" in summary.error
    assert summary.run_row_id == 1
    assert run.outcome_recorded is False
