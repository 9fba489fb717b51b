"""Refuse a connection pooler that does not keep one server connection per client.

The run lock is a session-level advisory lock: it belongs to the server
connection it was taken on. Behind a pooler in transaction or statement mode
(PgBouncer `pool_mode = transaction`, Supabase's pooler port 6543) the client
keeps a server connection only while a transaction is open; between statements
the server connection goes back to the pool, still holding the lock, and the
next statement (the unlock, the lock checks) may run on another one.

What a client can see is not enough to tell the modes apart by itself: with
nobody else using the pool, a transaction-mode PgBouncer hands the same server
connection back to the same client every time (it reuses the most recently
released one), so "my pid did not change" proves nothing. The check therefore
makes the pooler show whether the lock connection's server connection stays
bound to it while it is idle:

1. On the lock connection, S1: the server's pid P, the local id L of this
   transaction (pg_locks, virtualxid `backend/L`: a backend numbers its
   transactions one by one) and the server's clock.
2. Probe connections to the same URL each open a transaction (which pins a
   server connection in every pooler mode) and keep it open, one after the
   other, until
   - one is given P: the pooler handed the lock connection's server connection
     to another client. Refused: not session mode;
   - or one is given a server connection started after it asked (backend_start
     later than the server's clock read just before the request), or has no
     answer after QUEUED_AFTER_S (queued). A pooler starts a server connection for a
     client, or queues it, only when no server connection is idle; so at that
     instant P was not idle in the pool: bound to the lock connection (session
     mode), or in use by another client.
   The probes then let go.
3. On the lock connection, S2: the pid must be P again and the transaction id
   exactly L + 1, i.e. no other client's transaction ran on P between S1 and S2
   (on a direct connection, the pid alone: an idle backend numbers its own
   catch-ups on other sessions' catalog changes).

In session mode (or on a direct connection) all of it holds by construction. In
transaction mode it cannot: while P is idle in the pool, a probe is given an
idle server connection (P, or another one, and the probes go on), never a new
one or a place in the queue; if P was in use by another client at the instant
of step 2, that client's transaction ran on P between S1 and S2, so S2 runs
elsewhere or sees an id greater than L + 1. Statement mode refuses the probes'
transaction blocks outright. The limits, both about timing rather than luck:
a server connection that an unrelated client's demand started in the instant
between the clock read and the probe's request, and that came idle again within
that instant, would pass for the probe's own (the clock is read on a connection
already holding a server connection, right before the request, to keep that
instant to one round trip); and a probe given an idle server connection that
then takes longer than QUEUED_AFTER_S (or 20 times the server's slowest answer,
up to QUEUED_AFTER_MAX_S) to answer a trivial query would pass for a queued one:
a transaction-mode pool on a server that overloaded could pass. The check says
nothing about a pooler whose mode changes later (a reload).

The cost is a few short-lived connections once per run (one on a direct connection;
one per idle pooled server connection, plus one, behind a session pooler). It fails
closed: when the lock connection's own statements wait longer than PROBE_TIMEOUT_S for
a server connection, or the pool holds more idle server connections than
MAX_PROBE_CONNECTIONS, the run is refused.
Behind PgBouncer `conn.info.backend_pid` is made up (its own BackendKeyData); the
lock records the server's pid (from S1), as pg_locks shows.
"""

from __future__ import annotations

import logging
import select
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import overload

import psycopg
from psycopg import pq

from reminders_pipeline.db.connector import Session, raw_connection
from reminders_pipeline.db.queries import query
from reminders_pipeline.db.url import describe
from reminders_pipeline.errors import UnsupportedPooler

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 15.0  # a busy day's server connection start; an exhausted pool fails
# A probe with no answer after this long is queued (no idle server connection to
# give): at least a second and many times the server's slowest answer, at most a
# few seconds, so other runs' checks queued behind these probes keep their time.
QUEUED_AFTER_S, QUEUED_FACTOR, QUEUED_AFTER_MAX_S = 1.0, 20, 4.0
# Session-mode pools keep idle server connections (default_pool_size is 20 in
# PgBouncer); draining more than this many means the check would cost too much.
MAX_PROBE_CONNECTIONS = 64
PROBE_APPLICATION_NAME = "reminders-pooler-check"

USE_INSTEAD = (
    "Use a direct connection to PostgreSQL, or a session-mode pooler URL (PgBouncer "
    "pool_mode = session; on Supabase the direct database host, or the pooler's session "
    "port 5432 instead of the transaction port 6543)."
)


@dataclass(frozen=True)
class SessionBinding:
    """What the check found about the lock connection."""

    server_pid: int  # pg_backend_pid(): what pg_locks shows for this session
    key_pid: int  # BackendKeyData's pid: the pooler's own number behind a pooler
    probes: int  # probe connections it took to confirm the binding

    @property
    def behind_pooler(self) -> bool:
        return self.server_pid != self.key_pid


def require_session_binding(session: Session | psycopg.Connection, url: str) -> SessionBinding:
    """Confirm that `conn` keeps one server connection; raise UnsupportedPooler if not.

    `conn` must be a fresh autocommit connection on which nothing else runs
    meanwhile; `url` is the URL it was opened with (the probes use the same pool).
    Every wait, on `conn` too, is bounded by PROBE_TIMEOUT_S: behind a
    transaction-mode pool the lock connection itself queues for a server
    connection, and PgBouncer would keep it queued for minutes.
    """
    conn = session.raw if isinstance(session, Session) else session
    where = describe(url)
    deadline = time.monotonic() + PROBE_TIMEOUT_S

    slowest = 0.0  # the slowest answer so far: how busy the server and pooler are now

    def ask(on: psycopg.Connection, name: str) -> list[str]:
        nonlocal slowest
        started = time.monotonic()
        answer = _ask(on, name, where, deadline)
        slowest = max(slowest, time.monotonic() - started)
        return answer

    probes: list[psycopg.Connection] = []
    try:
        # Each probe connects between two readings of the server's clock: the
        # second one is followed by nothing but the probe's request for a server
        # connection (a pooler starts its server connection after that), the
        # first one precedes the probe's connect (a direct connection's server
        # process starts at connect, and its BackendKeyData pid is its own).
        before = Decimal(ask(conn, "pooler_probe_clock")[0])
        probe = _open_probe(url, deadline)
        probes.append(probe)
        pid, xid, at = ask(conn, "pooler_probe_lock_session")
        server_pid, local_xid, after = int(pid), int(xid), Decimal(at)
        while True:
            patience = min(QUEUED_AFTER_MAX_S, max(QUEUED_AFTER_S, QUEUED_FACTOR * slowest))
            # Not timed into `slowest`: a probe's wait is the pool's, not the server's,
            # and other checks on the same pool (concurrent runs) make it long.
            answer = _ask(probe, "pooler_probe_hold_server", where, deadline, patience)
            if answer is None:
                # Queued: the pool had no idle server connection, P included.
                break
            pid, started = answer
            if int(pid) == server_pid:
                raise UnsupportedPooler(
                    f"the connection to {where} goes through a pooler in transaction or "
                    f"statement mode: while the run lock's connection stayed open, its server "
                    f"connection (pid {server_pid}) was given to another client. A session "
                    "advisory lock taken there would stay on a server connection other "
                    "clients share. " + USE_INSTEAD
                )
            own = int(pid) == probe.info.backend_pid
            if Decimal(started) > after or (own and Decimal(started) > before):
                # Started for this probe: the pool had no idle server connection.
                break
            if len(probes) == MAX_PROBE_CONNECTIONS:
                raise UnsupportedPooler(
                    f"cannot confirm that the connection to {where} keeps one server "
                    f"connection per client: {MAX_PROBE_CONNECTIONS} probe connections were "
                    "all given idle pooled server connections. " + USE_INSTEAD
                )
            held = probe
            before = Decimal(ask(held, "pooler_probe_clock")[0])
            probe = _open_probe(url, deadline)
            probes.append(probe)
            after = Decimal(ask(held, "pooler_probe_clock")[0])
    finally:
        # Let go before S2: what the probes showed is about an instant between S1
        # and S2, and holding server connections longer could starve S2 itself.
        for each in probes:
            _let_go(each)
    pid, xid, _ = ask(conn, "pooler_probe_lock_session")
    direct = server_pid == conn.info.backend_pid  # its server process serves no one else
    if int(pid) != server_pid or (int(xid) != local_xid + 1 and not direct):
        evidence = (
            f"two statements in a row ran on server connections {server_pid} and {pid}"
            if int(pid) != server_pid
            else f"another client's transaction ran on its server connection ({server_pid}) "
            "between two of its statements"
        )
        raise UnsupportedPooler(
            f"the connection to {where} goes through a pooler in transaction or statement "
            f"mode: {evidence}. A session advisory lock needs one server connection for the "
            "whole run. " + USE_INSTEAD
        )
    binding = SessionBinding(server_pid, conn.info.backend_pid, len(probes))
    if binding.behind_pooler:
        log.info(
            "the run lock's connection to %s goes through a session-mode pooler "
            "(server pid %s, pooler's pid %s)",
            where,
            binding.server_pid,
            binding.key_pid,
        )
    return binding


def _open_probe(url: str, deadline: float) -> psycopg.Connection:
    """A new client connection to the same URL; no server connection asked for yet."""
    return raw_connection(
        url,
        autocommit=True,
        application_name=PROBE_APPLICATION_NAME,
        connect_timeout=max(2, int(deadline - time.monotonic())),
    )


@overload
def _ask(conn: psycopg.Connection, name: str, where: str, deadline: float) -> list[str]: ...
@overload
def _ask(
    conn: psycopg.Connection, name: str, where: str, deadline: float, patience: float
) -> list[str] | None: ...
def _ask(
    conn: psycopg.Connection,
    name: str,
    where: str,
    deadline: float,
    patience: float | None = None,
) -> list[str] | None:
    """Run a named query (simple protocol, no parameters); its one row as text.

    Through libpq's asynchronous calls, so that waiting for a pool with nothing
    free ends at `deadline`. With `patience`, None when no answer came within
    that many seconds (the query stays pending).
    """
    overall = deadline
    if patience is not None:
        deadline = min(deadline, time.monotonic() + patience)
    pgconn = conn.pgconn
    results: list[pq.abc.PGresult] = []
    try:
        pgconn.send_query(query(name).encode())
        while True:
            pgconn.consume_input()
            if not pgconn.is_busy():
                res = pgconn.get_result()
                if res is None:
                    break
                results.append(res)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([pgconn.socket], [], [], remaining)[0]:
                if patience is not None and time.monotonic() < overall:
                    return None
                raise UnsupportedPooler(
                    f"cannot confirm that the connection to {where} keeps one server "
                    f"connection per client: no server connection came free within "
                    f"{PROBE_TIMEOUT_S:.0f}s (is the pool exhausted?). " + USE_INSTEAD
                )
    except psycopg.OperationalError as exc:
        # PgBouncer in statement mode answers a transaction block by closing.
        raise _failed(where, str(exc)) from None
    for res in results:
        if res.status == pq.ExecStatus.FATAL_ERROR:
            raise _failed(where, (res.error_message or b"").decode(errors="replace"))
    rows = [res for res in results if res.status == pq.ExecStatus.TUPLES_OK]
    values = [rows[0].get_value(0, i) for i in range(rows[0].nfields)] if rows else []
    if len(rows) != 1 or rows[0].ntuples != 1 or any(v is None for v in values):
        raise UnsupportedPooler(
            f"cannot confirm that the connection to {where} keeps one server connection "
            f"per client: the check's query {name} returned no row. " + USE_INSTEAD
        )
    return [v.decode() for v in values if v is not None]


def _failed(where: str, message: str) -> UnsupportedPooler:
    first_line = message.strip().splitlines()[0] if message.strip() else "connection closed"
    if "statement pooling" in first_line or "transaction blocks" in first_line:
        return UnsupportedPooler(
            f"the connection to {where} goes through a pooler in statement mode: it refuses "
            f"a transaction block ({first_line}). " + USE_INSTEAD
        )
    return UnsupportedPooler(
        f"cannot confirm that the connection to {where} keeps one server connection per "
        f"client: the check's query failed ({first_line}). " + USE_INSTEAD
    )


def _let_go(conn: psycopg.Connection) -> None:
    """End the probe's transaction first, so a session pooler can reuse its server connection."""
    try:
        if conn.pgconn.transaction_status == pq.TransactionStatus.INTRANS:
            conn.pgconn.exec_(b"ROLLBACK")
    except Exception:  # noqa: BLE001 - closing anyway
        pass
    finally:
        conn.close()
