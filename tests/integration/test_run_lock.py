"""The advisory lock on real PostgreSQL, always observed from a second connection."""

from __future__ import annotations

import logging

import pytest

from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.db.connector import connect
from reminders_pipeline.db.lock_holder import find_lock_holder
from reminders_pipeline.db.lock_keys import LOCK_KEY
from reminders_pipeline.errors import LockLost
from tests.helpers.locks import lock_free


def test_second_session_cannot_take_the_lock_while_the_first_holds_it(db_url):
    with RunLock(db_url, "run-a") as first, RunLock(db_url, "run-b") as second:
        assert first.try_acquire()
        assert not second.try_acquire()
        holder = second.holder()
        assert holder is not None
        assert holder.pid == first.backend_pid
        assert holder.run_id == "run-a"
        assert holder.application_name == "reminders-run:run-a"
    assert lock_free(db_url)


def test_release_frees_the_lock_for_other_sessions(db_url):
    with RunLock(db_url, "run-a") as lock:
        assert lock.try_acquire()
        assert not lock_free(db_url)
        assert lock.release() is True
        assert lock_free(db_url)


def test_closing_the_session_drops_the_lock_without_unlock(db_url):
    lock = RunLock(db_url, "run-a").__enter__()
    assert lock.try_acquire()
    lock.conn.close()  # as if the process died: no pg_advisory_unlock
    assert lock_free(db_url)


def test_unlock_of_a_lock_not_held_is_logged_as_error(db_url, caplog):
    with RunLock(db_url, "run-a") as lock:
        assert lock.try_acquire()
        # Someone unlocks behind our back (stands in for a pooler swapping sessions).
        lock.conn.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEY)
        with caplog.at_level(logging.ERROR, logger="reminders_pipeline.core.lock"):
            assert lock.release() is False
    assert "returned false" in caplog.text


def test_ensure_held_raises_when_the_lock_session_is_terminated(db_url):
    with RunLock(db_url, "run-a") as lock:
        assert lock.try_acquire()
        lock.ensure_held()
        with connect(db_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (lock.backend_pid,))
        with pytest.raises(LockLost):
            lock.ensure_held()
    assert lock_free(db_url)


def test_holder_is_none_when_free(db_url):
    with connect(db_url, autocommit=True) as conn:
        assert find_lock_holder(conn) is None


def test_lock_session_sets_server_side_keepalives(db_url):
    """So PostgreSQL itself drops the lock of a client host that vanished (TCP only)."""
    with RunLock(db_url, "run-a") as lock:
        rows = lock.conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name LIKE 'tcp_keepalives_%'"
        ).fetchall()
        unix_socket = lock.conn.raw.info.host.startswith("/")
    settings = {r["name"]: r["setting"] for r in rows}
    if unix_socket:
        pytest.skip("PostgreSQL ignores TCP keepalives on a Unix socket")
    assert settings == {
        "tcp_keepalives_idle": "30",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "3",
    }


def test_lock_session_checks_for_a_vanished_client_while_a_statement_runs(db_url):
    """The run's statements run on the lock session; a killed client must not leave one
    waiting (and the lock held) until it ends. See test_crash_recovery for the effect."""
    with RunLock(db_url, "run-a") as lock:
        if lock.conn.server_version < 140000:
            pytest.skip("client_connection_check_interval needs PostgreSQL 14")
        setting = lock.conn.execute("SHOW client_connection_check_interval").fetchone()
    assert list(setting.values()) == ["1s"]
