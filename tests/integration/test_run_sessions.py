"""The bounds on a run's sessions (db/run_sessions.py), against a real server.

Silence only is bounded: a session whose client says nothing loses the lock, a
watch whose server says nothing closes the run's sessions, and a statement the
server is busy with runs to its end however long it takes.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.db.lock_holder import lock_holder
from reminders_pipeline.db.run_sessions import RunSessions, SessionBounds
from reminders_pipeline.errors import ConnectionLost
from reminders_pipeline.settings.liveness import LivenessSettings
from tests.helpers.runs import wait_for

SILENCE_S = 3


def test_every_bound_is_set_on_the_session_and_derived_from_the_silence(db_url):
    sessions = RunSessions(db_url, LivenessSettings(silence_s=SILENCE_S))
    session = sessions.connect(autocommit=True)
    over_tcp = not session.raw.info.host.startswith("/")  # on a Unix socket the tcp_* ones read 0
    try:
        shown = {
            name: session.execute(f"SHOW {name}").fetchone()[name]
            for name in SessionBounds(sessions.liveness).server_settings(session.server_version)
        }
    finally:
        session.close()
    assert shown["idle_in_transaction_session_timeout"] == f"{SILENCE_S}s"
    if over_tcp:
        assert shown["tcp_user_timeout"] in (f"{SILENCE_S}s", f"{SILENCE_S * 1000}")  # ms
    if "idle_session_timeout" in shown:
        assert shown["idle_session_timeout"] == f"{SILENCE_S}s"
        assert shown["client_connection_check_interval"] == "1s"
    # No statement timeout: a long batch is never cut.
    assert "statement_timeout" not in shown


def test_a_silent_client_loses_the_lock_within_the_bound(db_url):
    sessions = RunSessions(db_url, LivenessSettings(silence_s=SILENCE_S))
    lock = RunLock(db_url, "silent-run", sessions).__enter__()
    try:
        assert lock.try_acquire()
        lock.conn.execute("BEGIN")  # then nothing: the client has gone silent
        silent_since = time.monotonic()
        wait_for(lambda: lock_holder(db_url) is None, timeout=SILENCE_S + 5, what="the lock")
        assert time.monotonic() - silent_since >= SILENCE_S - 0.5
    finally:
        lock.close()


def test_a_long_statement_is_not_cut(db_url):
    """Longer than the silence bound, on a watched session: it ends normally."""
    sessions = RunSessions(db_url, LivenessSettings(silence_s=SILENCE_S))
    sessions.start()
    try:
        with RunLock(db_url, "long-batch", sessions) as lock:
            assert lock.try_acquire()
            with lock.transaction() as conn:
                conn.execute("SELECT pg_sleep(%s)", (SILENCE_S * 2 + 1,))
            lock.ensure_held()
    finally:
        sessions.stop()
    assert sessions.tripped is None


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections (the kernel does) and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_the_watch_closes_sessions_when_the_server_stays_silent(db_url, silent_server):
    sessions = RunSessions(db_url, LivenessSettings(silence_s=SILENCE_S))
    session = sessions.connect(autocommit=True)
    # From now on the watch's probes reach a peer that never answers.
    sessions.url = f"postgresql://postgres@127.0.0.1:{silent_server}/postgres"
    sessions.start()
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionLost):
            # Stands for a read that would never return: the watch must end it.
            session.execute("SELECT pg_sleep(60)")
    finally:
        sessions.stop()
        session.close()
    waited = time.monotonic() - started
    assert sessions.tripped is not None and "REMINDERS_RUN_SILENCE_S=3" in sessions.tripped
    assert SILENCE_S <= waited < SILENCE_S + 6, waited


def test_give_up_after_closes_only_sessions_still_busy(db_url):
    sessions = RunSessions(db_url, LivenessSettings(silence_s=60))
    busy = sessions.connect(autocommit=True)
    idle = sessions.connect(autocommit=True)
    failure: list[BaseException] = []

    def wait_long() -> None:
        try:
            busy.execute("SELECT pg_sleep(60)")
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            failure.append(exc)

    waiting = threading.Thread(target=wait_long)
    waiting.start()
    try:
        time.sleep(0.5)
        sessions.give_up_after(1.0, "terminated by SIGTERM")
        waiting.join(timeout=10)
        assert not waiting.is_alive()
        assert failure and isinstance(failure[0], ConnectionLost)
        assert idle.execute("SELECT 1 AS one").fetchone()["one"] == 1
    finally:
        sessions.stop()
        busy.close()
        idle.close()
