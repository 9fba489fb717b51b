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
   exactly L + 1, i.e. no other client's transaction ran on P between S1 and S2.
   An idle backend also numbers its own catch-ups on catalog changes made in any
   database of the server: on a direct connection the pid alone counts; behind a
   pooler an id moved with the pid unchanged is checked again from step 1, up to
   XID_ATTEMPTS times (in transaction mode every attempt fails by construction).

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
import time
from dataclasses import dataclass
from decimal import Decimal

import psycopg

from reminders_pipeline.db import pooler_wire
from reminders_pipeline.db.connector import Session
from reminders_pipeline.db.pooler_wire import USE_INSTEAD, ask_within, let_go, open_probe
from reminders_pipeline.db.url import describe
from reminders_pipeline.errors import UnsupportedPooler

log = logging.getLogger(__name__)

# A probe with no answer after this long is queued (no idle server connection to
# give): at least a second and many times the server's slowest answer, at most a
# few seconds, so other runs' checks queued behind these probes keep their time.
QUEUED_AFTER_S, QUEUED_FACTOR, QUEUED_AFTER_MAX_S = 1.0, 20, 4.0
# Session-mode pools keep idle server connections (default_pool_size is 20 in
# PgBouncer); draining more than this many means the check would cost too much.
MAX_PROBE_CONNECTIONS = 64
XID_ATTEMPTS = 3  # a catalog catch-up lands between S1 and S2 rarely, twice in a row more so


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
    deadline = time.monotonic() + pooler_wire.PROBE_TIMEOUT_S
    for attempt in range(1, XID_ATTEMPTS + 1):
        try:
            return _check_once(conn, url, deadline)
        except _TransactionCountMoved as moved:
            if attempt == XID_ATTEMPTS:
                raise
            log.info("pooler check: %s; checking again (%d of %d)", moved, attempt, XID_ATTEMPTS)
    raise AssertionError("unreachable")


class _TransactionCountMoved(UnsupportedPooler):
    """The only evidence: the lock session's local transaction id moved (same pid)."""


def _check_once(conn: psycopg.Connection, url: str, deadline: float) -> SessionBinding:
    where = describe(url)
    slowest = 0.0  # the slowest answer so far: how busy the server and pooler are now

    def ask(on: psycopg.Connection, name: str) -> list[str]:
        nonlocal slowest
        started = time.monotonic()
        answer = ask_within(on, name, where, deadline)
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
        probe = open_probe(url, deadline)
        probes.append(probe)
        pid, xid, at = ask(conn, "pooler_probe_lock_session")
        server_pid, local_xid, after = int(pid), int(xid), Decimal(at)
        while True:
            patience = min(QUEUED_AFTER_MAX_S, max(QUEUED_AFTER_S, QUEUED_FACTOR * slowest))
            # Not timed into `slowest`: a probe's wait is the pool's, not the server's,
            # and other checks on the same pool (concurrent runs) make it long.
            answer = ask_within(probe, "pooler_probe_hold_server", where, deadline, patience)
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
            probe = open_probe(url, deadline)
            probes.append(probe)
            after = Decimal(ask(held, "pooler_probe_clock")[0])
    finally:
        # Let go before S2: what the probes showed is about an instant between S1
        # and S2, and holding server connections longer could starve S2 itself.
        for each in probes:
            let_go(each)
    pid, xid, _ = ask(conn, "pooler_probe_lock_session")
    direct = server_pid == conn.info.backend_pid  # its server process serves no one else
    if int(pid) != server_pid or (int(xid) != local_xid + 1 and not direct):
        moved = int(pid) == server_pid
        evidence = (
            f"another client's transaction ran on its server connection ({server_pid}) "
            "between two of its statements"
            if moved
            else f"two statements in a row ran on server connections {server_pid} and {pid}"
        )
        raise (_TransactionCountMoved if moved else UnsupportedPooler)(
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
