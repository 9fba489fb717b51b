"""Refuse a connection pooler that does not keep one server connection per client.

The run lock is a session-level advisory lock: it belongs to the server connection
it was taken on. Behind a pooler in transaction or statement mode (PgBouncer
`pool_mode = transaction`, Supabase's pooler port 6543) that server connection goes
back to the pool between transactions, still holding the lock, and the next
statement (the unlock, the lock checks) may run on another one. "My pid did not
change" proves nothing: with nobody else on the pool, a transaction-mode PgBouncer
hands the same server connection back every time. So the pooler is made to show
whether the lock connection's server connection stays bound to it while idle
(docs/decisions/lock-scope.md, *Poolers*, says why each step holds):

1. S1, on the lock connection: the server's pid P, the local id L of this
   transaction (pg_locks' virtualxid `backend/L`) and the server's clock.
2. Probe connections each open a transaction (which pins a server connection in
   every mode) and keep it, one after the other, until one is given P (refused),
   or one is given a server connection started after it asked, or gets no answer
   (queued): a pooler does either only when no server connection is idle, so P was
   not idle in the pool. The probes then let go.
3. S2, on the lock connection: pid P again and transaction id exactly L + 1. An idle
   backend also numbers its catch-ups on catalog changes in any database of the
   server: on a direct connection the pid alone counts; behind a pooler a moved id
   with the pid unchanged is checked again from step 1, up to XID_ATTEMPTS times.

The limits are about timing rather than luck: a server connection that an unrelated
client's demand started, and that came idle again, within the one round trip
between the clock read and the probe's request would pass for the probe's own; and
a probe given an idle server connection that takes longer than its patience
(QUEUED_AFTER_*) to answer a trivial query would pass for a queued one, so a
transaction-mode pool on a server that overloaded could pass. A pooler whose mode
changes later (a reload) is not seen. The check fails closed: a wait longer than
PROBE_TIMEOUT_S, on the lock connection too, or more than MAX_PROBE_CONNECTIONS
idle server connections to drain refuse the run. Behind PgBouncer
`conn.info.backend_pid` is its own number; the lock records the server's pid from S1.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import psycopg
from psycopg import pq

from reminders_pipeline.db.connector import Session, raw_connection, results_within
from reminders_pipeline.db.queries import query
from reminders_pipeline.db.url import describe
from reminders_pipeline.errors import UnsupportedPooler, first_line

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 15.0  # a busy day's server connection start; an exhausted pool fails
PROBE_APPLICATION_NAME = "reminders-pooler-check"

USE_INSTEAD = (
    "Use a direct connection to PostgreSQL, or a session-mode pooler URL (PgBouncer "
    "pool_mode = session; on Supabase the direct database host, or the pooler's session "
    "port 5432 instead of the transaction port 6543)."
)
# A probe with no answer after this long is queued (no idle server connection to
# give): at least a second and many times the server's slowest answer, at most a
# few seconds, so other runs' checks queued behind these probes keep their time.
QUEUED_AFTER_S, QUEUED_FACTOR, QUEUED_AFTER_MAX_S = 1.0, 20, 4.0
# Session-mode pools keep idle server connections (default_pool_size is 20 in
# PgBouncer); draining more than this many means the check would cost too much.
MAX_PROBE_CONNECTIONS = 64
XID_ATTEMPTS = 3  # a catalog catch-up lands between S1 and S2 rarely, twice in a row more so


def require_session_binding(session: Session, url: str) -> int:
    """Confirm that `session` keeps one server connection, and return that server
    connection's pid (pg_locks shows it; behind a pooler `backend_pid` is the pooler's
    own number); raise UnsupportedPooler if not.

    `session` must be a fresh autocommit one on which nothing else runs meanwhile;
    `url` is the URL it was opened with (the probes use the same pool).
    """
    # One deadline for every wait, the lock connection's too: behind a transaction-mode
    # pool it queues for a server connection itself, for minutes in PgBouncer.
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    for attempt in range(1, XID_ATTEMPTS):
        try:
            return _check_once(session.raw, url, deadline)
        except _TransactionCountMoved as moved:
            log.info("pooler check: %s; checking again (%d of %d)", moved, attempt, XID_ATTEMPTS)
    return _check_once(session.raw, url, deadline)


class _TransactionCountMoved(UnsupportedPooler):
    """The only evidence: the lock session's local transaction id moved (same pid)."""


def _check_once(conn: psycopg.Connection, url: str, deadline: float) -> int:
    where = describe(url)
    slowest = 0.0  # the slowest answer so far: how busy the server and pooler are now

    def ask(on: psycopg.Connection, name: str) -> list[str]:
        nonlocal slowest
        started = time.monotonic()
        answer = ask_within(on, name, where, deadline)
        if answer is None:
            raise _no_server_connection(where)
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
            answer = ask_within(
                probe, "pooler_probe_hold_server", where, min(deadline, time.monotonic() + patience)
            )
            if answer is None:
                if time.monotonic() >= deadline:
                    raise _no_server_connection(where)
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
    if not direct:
        log.info(
            "the run lock's connection to %s goes through a session-mode pooler "
            "(server pid %s, pooler's pid %s)",
            where,
            server_pid,
            conn.info.backend_pid,
        )
    return server_pid


# -- the check's conversations: probe connections, a named query whose every wait
# ends at a deadline, letting a probe go


def open_probe(url: str, deadline: float) -> psycopg.Connection:
    """A new client connection to the same URL; no server connection asked for yet."""
    return raw_connection(
        url,
        autocommit=True,
        application_name=PROBE_APPLICATION_NAME,
        connect_timeout=max(2, int(deadline - time.monotonic())),
    )


def ask_within(
    conn: psycopg.Connection, name: str, where: str, deadline: float
) -> list[str] | None:
    """Run a named query (simple protocol, no parameters); its one row as text.

    Through libpq's asynchronous calls, so that waiting for a pool with nothing
    free ends at `deadline`: None then (the query stays pending).
    """
    try:
        results = results_within(conn.pgconn, query(name).encode(), deadline)
    except psycopg.OperationalError as exc:
        # PgBouncer in statement mode answers a transaction block by closing.
        raise _failed(where, str(exc)) from None
    if results is None:
        return None
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


def _no_server_connection(where: str) -> UnsupportedPooler:
    return UnsupportedPooler(
        f"cannot confirm that the connection to {where} keeps one server connection per "
        f"client: no server connection came free within {PROBE_TIMEOUT_S:.0f}s (is the pool "
        "exhausted?). " + USE_INSTEAD
    )


def _failed(where: str, message: str) -> UnsupportedPooler:
    line = first_line(message) or "connection closed"
    if "statement pooling" in line or "transaction blocks" in line:
        return UnsupportedPooler(
            f"the connection to {where} goes through a pooler in statement mode: it refuses "
            f"a transaction block ({line}). " + USE_INSTEAD
        )
    return UnsupportedPooler(
        f"cannot confirm that the connection to {where} keeps one server connection per "
        f"client: the check's query failed ({line}). " + USE_INSTEAD
    )


def let_go(conn: psycopg.Connection) -> None:
    """End the probe's transaction first, so a session pooler can reuse its server connection."""
    try:
        if conn.pgconn.transaction_status == pq.TransactionStatus.INTRANS:
            conn.pgconn.exec_(b"ROLLBACK")
    except Exception:  # noqa: BLE001 - closing anyway
        pass
    finally:
        conn.close()
