"""The pooler check's conversations (db/pooler.py): probe connections, a named query
whose every wait ends at a deadline, and letting a probe go."""

from __future__ import annotations

import time
from typing import overload

import psycopg
from psycopg import pq

from reminders_pipeline.db.connector import raw_connection, results_within
from reminders_pipeline.db.queries import query
from reminders_pipeline.errors import UnsupportedPooler

PROBE_TIMEOUT_S = 15.0  # a busy day's server connection start; an exhausted pool fails
PROBE_APPLICATION_NAME = "reminders-pooler-check"

USE_INSTEAD = (
    "Use a direct connection to PostgreSQL, or a session-mode pooler URL (PgBouncer "
    "pool_mode = session; on Supabase the direct database host, or the pooler's session "
    "port 5432 instead of the transaction port 6543)."
)


def open_probe(url: str, deadline: float) -> psycopg.Connection:
    """A new client connection to the same URL; no server connection asked for yet."""
    return raw_connection(
        url,
        autocommit=True,
        application_name=PROBE_APPLICATION_NAME,
        connect_timeout=max(2, int(deadline - time.monotonic())),
    )


@overload
def ask_within(conn: psycopg.Connection, name: str, where: str, deadline: float) -> list[str]: ...
@overload
def ask_within(
    conn: psycopg.Connection, name: str, where: str, deadline: float, patience: float
) -> list[str] | None: ...
def ask_within(
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
    try:
        results = results_within(conn.pgconn, query(name).encode(), deadline)
    except psycopg.OperationalError as exc:
        # PgBouncer in statement mode answers a transaction block by closing.
        raise _failed(where, str(exc)) from None
    if results is None:
        if patience is not None and time.monotonic() < overall:
            return None
        raise UnsupportedPooler(
            f"cannot confirm that the connection to {where} keeps one server "
            f"connection per client: no server connection came free within "
            f"{PROBE_TIMEOUT_S:.0f}s (is the pool exhausted?). " + USE_INSTEAD
        )
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


def let_go(conn: psycopg.Connection) -> None:
    """End the probe's transaction first, so a session pooler can reuse its server connection."""
    try:
        if conn.pgconn.transaction_status == pq.TransactionStatus.INTRANS:
            conn.pgconn.exec_(b"ROLLBACK")
    except Exception:  # noqa: BLE001 - closing anyway
        pass
    finally:
        conn.close()
