"""The run lock behind a real PgBouncer: refused in transaction and statement mode, sound in
session mode, with the server's pid recorded.

Every observation of the server (pg_locks, pg_stat_activity) is made on a direct
connection to the test's database, never through the pooler under test.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from reminders_pipeline.core.lock import RunLock
from reminders_pipeline.db.lock_keys import DISPATCH_LOCK
from reminders_pipeline.errors import UnsupportedPooler
from tests.helpers.locks import lock_free
from tests.helpers.pgbouncer import running_pgbouncer
from tests.helpers.runs import advisory_locks, wait_for

# The session-pool check reads its server connection's transaction count, which
# catalog churn in any database of the server moves (each test creates one):
# .ci/run runs these with no other test at once.
pytestmark = pytest.mark.alone

SHARING_MODES = ["transaction", "statement"]
# Rounds of concurrent lock attempts: small for CI, larger by hand.
ROUNDS = int(os.environ.get("REMINDERS_TEST_POOLER_ROUNDS", "5"))


def enter_and_take(url: str, run_id: str) -> str:
    """What a run would do first: open its lock session and try the lock.

    A refusal says which evidence the check found: "shared" (another client was
    given the lock session's server connection, or ran a transaction on it),
    "moved" (two statements ran on different ones), "statement" (no transaction
    blocks), or "unconfirmed" (no server connection came free in time).
    """
    try:
        with RunLock(url, run_id) as lock:
            return "acquired" if lock.try_acquire() else "busy"
    except UnsupportedPooler as exc:
        message = str(exc)
        for needle, kind in (
            ("was given to another client", "shared"),
            ("another client's transaction ran", "shared"),
            ("two statements in a row", "moved"),
            ("pooler in statement mode", "statement"),
        ):
            if needle in message:
                return f"refused: {kind}"
        return f"refused: unconfirmed ({message})"


@pytest.mark.parametrize("mode", SHARING_MODES)
def test_a_pooler_that_shares_server_connections_is_refused_before_the_lock(db_url, mode):
    with running_pgbouncer(db_url, mode=mode) as bouncer:
        url = bouncer.url(db_url)
        with pytest.raises(UnsupportedPooler) as refused, RunLock(url, "run-1"):
            pytest.fail("the lock session opened through a pooler that shares connections")
        message = str(refused.value)
        assert "statement mode" in message
        assert "direct connection" in message and "session-mode pooler" in message
        # Nothing was locked, on any server connection the pooler keeps.
        assert advisory_locks(db_url, excluding=DISPATCH_LOCK) == []
        assert lock_free(db_url)


@pytest.mark.parametrize("round_robin", [0, 1])
def test_transaction_mode_is_refused_whatever_server_connection_the_pool_hands_out(
    db_url, round_robin
):
    """With idle server connections in the pool, reused last-in-first-out (PgBouncer's
    default) or round robin, a probe may be given another one than the lock session's:
    the check must still refuse, every time."""
    with running_pgbouncer(
        db_url, mode="transaction", extra={"server_round_robin": str(round_robin)}
    ) as bouncer:
        url = bouncer.url(db_url)
        _warm_pool(url, 6)
        results = [enter_and_take(url, f"run-{i}") for i in range(10)]
        # All refused; one refused only because a loaded machine answered too slowly to
        # confirm the binding still fails closed, but the check must see the sharing.
        assert all(r.startswith("refused: ") for r in results), results
        assert any(r in ("refused: shared", "refused: moved") for r in results), results
        assert advisory_locks(db_url, excluding=DISPATCH_LOCK) == []


def test_transaction_mode_is_refused_while_other_clients_keep_the_pool_busy(db_url):
    """Other clients' short transactions take and release server connections all along;
    none of them makes the check pass."""
    with running_pgbouncer(db_url, mode="transaction") as bouncer:
        url = bouncer.url(db_url)
        _warm_pool(url, 6)
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=4 + 4) as pool:
            traffic = [pool.submit(_short_transactions, url, stop) for _ in range(4)]
            outcomes: list[str] = []
            try:
                for _ in range(ROUNDS):
                    attempts = [pool.submit(enter_and_take, url, f"r{i}") for i in range(4)]
                    results = [a.result(timeout=60) for a in attempts]
                    # Every attempt is refused; on a loaded machine a few may be refused
                    # because the binding could not be confirmed in time (fails closed).
                    assert all(r.startswith("refused: ") for r in results), results
                    outcomes += results
            finally:
                stop.set()
            assert sum(t.result(timeout=30) for t in traffic) > 0
            # ...but the check itself saw the server connection shared or moved.
            assert any(r in ("refused: shared", "refused: moved") for r in outcomes), outcomes
        assert advisory_locks(db_url, excluding=DISPATCH_LOCK) == []


def test_session_mode_gives_one_lock_and_records_the_server_pid(db_url):
    with running_pgbouncer(db_url, mode="session") as bouncer:
        url = bouncer.url(db_url)
        _warm_pool(url, 4)
        with RunLock(url, "run-a") as first, RunLock(url, "run-b") as second:
            assert first.try_acquire()
            assert not second.try_acquire()
            # The pid the lock records is the one pg_locks shows, not PgBouncer's own
            # number from BackendKeyData.
            assert [row["pid"] for row in advisory_locks(db_url, excluding=DISPATCH_LOCK)] == [
                first.backend_pid
            ]
            assert first.backend_pid != first.conn.backend_pid
            holder = second.holder()
            assert holder is not None and holder.pid == first.backend_pid
            assert holder.run_id == "run-a"
            first.ensure_held()
        assert advisory_locks(db_url, excluding=DISPATCH_LOCK) == []
        assert lock_free(db_url)


def test_a_session_pool_with_no_server_connection_to_spare_still_passes(db_url):
    """Every server connection of the pool is taken (two by other clients, one by the
    lock session): the probe is queued, which shows as much as a new server connection
    would, and the check passes instead of waiting for a free one."""
    with running_pgbouncer(db_url, mode="session", pool_size=3) as bouncer:
        url = bouncer.url(db_url)
        others = [psycopg.connect(url, autocommit=True) for _ in range(2)]
        try:
            for other in others:
                other.execute("SELECT 1")
            with RunLock(url, "run-a") as lock:
                assert lock.try_acquire()
                assert [row["pid"] for row in advisory_locks(db_url, excluding=DISPATCH_LOCK)] == [
                    lock.backend_pid
                ]
        finally:
            for other in others:
                other.close()


def test_concurrent_runs_through_a_session_pooler_take_the_lock_once(db_url):
    with running_pgbouncer(db_url, mode="session") as bouncer:
        url = bouncer.url(db_url)
        for _ in range(ROUNDS):
            barrier = threading.Barrier(4)
            held = threading.Event()
            release = threading.Event()

            def attempt(i: int, barrier=barrier, held=held, release=release) -> str:
                with RunLock(url, f"run-{i}") as lock:
                    barrier.wait(timeout=30)
                    if not lock.try_acquire():
                        return "busy"
                    held.set()
                    release.wait(timeout=30)
                    return "acquired"

            with ThreadPoolExecutor(max_workers=4) as pool:
                attempts = [pool.submit(attempt, i) for i in range(4)]
                try:
                    if not held.wait(timeout=30):
                        failed = [a.exception() for a in attempts if a.done()]
                        pytest.fail(f"no attempt took the lock: {failed}")
                    # The holder keeps the lock until every other attempt has tried.
                    wait_for(
                        lambda attempts=attempts: sum(a.done() for a in attempts) == 3,
                        timeout=30,
                        what="the other three attempts to try the lock",
                    )
                finally:
                    release.set()
                results = sorted(a.result(timeout=30) for a in attempts)
            assert results == ["acquired", "busy", "busy", "busy"]
            assert advisory_locks(db_url, excluding=DISPATCH_LOCK) == []


def test_a_direct_connection_passes_the_check_and_records_its_own_pid(db_url):
    with RunLock(db_url, "run-a") as lock:
        assert lock.backend_pid == lock.conn.backend_pid
        assert lock.try_acquire()
        assert [row["pid"] for row in advisory_locks(db_url, excluding=DISPATCH_LOCK)] == [
            lock.backend_pid
        ]


def test_a_direct_connection_passes_while_other_sessions_change_catalogs(db_url, monkeypatch):
    """An idle backend numbers transactions of its own when it catches up on other
    sessions' catalog invalidations; on a direct connection that is no other client."""
    from reminders_pipeline.db import pooler

    real_let_go = pooler.let_go
    caught_up: list[int] = []

    def let_go_after_catalog_churn(probe) -> None:
        if not caught_up:
            # Between S1 and S2 of the check: enough invalidations that the idle lock
            # session is signalled to catch up (the shared queue holds 4096).
            with psycopg.connect(db_url, autocommit=True) as other:
                for _ in range(3000):
                    other.execute("CREATE TEMP TABLE churn (i int); DROP TABLE churn")
            caught_up.append(1)
        real_let_go(probe)

    monkeypatch.setattr(pooler, "let_go", let_go_after_catalog_churn)
    # The churn runs inside the check's window; on a loaded machine it takes longer
    # than the check's whole deadline, which would then refuse for want of time.
    monkeypatch.setattr(pooler, "PROBE_TIMEOUT_S", 300.0)
    with RunLock(db_url, "run-a") as lock:
        assert lock.try_acquire()
        assert caught_up == [1]
        assert [row["pid"] for row in advisory_locks(db_url, excluding=DISPATCH_LOCK)] == [
            lock.backend_pid
        ]


def test_a_session_pooler_passes_while_another_database_changes_catalogs(
    db_url, empty_url, monkeypatch
):
    """Behind a session-mode pooler the transaction count is evidence, and an idle
    backend's catch-up on catalog changes made in any database of the server moves it:
    a count moved with the pid unchanged is checked again, not refused."""
    from reminders_pipeline.db import pooler

    real_let_go, real_check = pooler.let_go, pooler._check_once
    checks: list[int] = []

    def let_go_after_catalog_churn(probe) -> None:
        if len(checks) == 1 and not getattr(probe, "churned", False):
            # Between S1 and S2 of the first check, in another database: enough
            # invalidations that the idle lock backend is signalled to catch up.
            with psycopg.connect(empty_url, autocommit=True) as other:
                for _ in range(3000):
                    other.execute("CREATE TEMP TABLE churn (i int); DROP TABLE churn")
            probe.churned = True
        real_let_go(probe)

    def counted_check(*args):
        checks.append(1)
        return real_check(*args)

    monkeypatch.setattr(pooler, "let_go", let_go_after_catalog_churn)
    monkeypatch.setattr(pooler, "_check_once", counted_check)
    monkeypatch.setattr(pooler, "PROBE_TIMEOUT_S", 300.0)  # the churn is slow
    with (
        running_pgbouncer(db_url, mode="session") as bouncer,
        RunLock(bouncer.url(db_url), "run-a") as lock,
    ):
        assert lock.try_acquire()
        assert len(checks) == 2, "the churned check should have been made again"
        assert [row["pid"] for row in advisory_locks(db_url, excluding=DISPATCH_LOCK)] == [
            lock.backend_pid
        ]


# ------------------------------------------------------------------ helpers


def _warm_pool(url: str, count: int) -> None:
    """Leave `count` idle server connections in the pool: as many transactions at once."""
    conns = [psycopg.connect(url) for _ in range(count)]
    for conn in conns:
        conn.execute("SELECT 1")
    for conn in conns:
        conn.commit()
        conn.close()


def _short_transactions(url: str, stop: threading.Event) -> int:
    done = 0
    # Not prepared: psycopg's prepared statements do not survive transaction pooling.
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        while not stop.is_set():
            conn.execute("SELECT pg_backend_pid()")
            done += 1
    return done
