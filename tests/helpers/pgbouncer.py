"""A real PgBouncer in front of the test server, for tests about connection poolers.

Started from the Debian package `pgbouncer` on a free loopback port, with its
config in a temporary folder. When the tests run as root (PgBouncer refuses to
run as root) it runs as the `postgres` OS user, or, for a server listening on a
Unix socket in a folder owned by another account (the embedded server keeps its
socket in its private data folder), as that account. Every database name is forwarded to the
same-named database on the test server, logged in as the URL's user, so a test
reaches its own database through the pooler by changing host and port only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.helpers.ports import free_port

PACKAGE = "pgbouncer"
START_TIMEOUT_S = 15


def pgbouncer_binary() -> str:
    """Path of the pgbouncer binary, or skip the test naming the package to install."""
    found = shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None
    )
    if not found:
        pytest.skip(
            "pgbouncer is not installed: install the Debian package `pgbouncer` "
            "(apt-get install -y pgbouncer); .ci/run does"
        )
    return found


def _target(server_url: str) -> str:
    """The [databases] line that forwards every database name to the test server."""
    params = conninfo_to_dict(server_url)
    host = params.get("host") or "/var/run/postgresql"
    port = params.get("port") or "5432"
    user = params.get("user") or "postgres"
    if "," in host or "," in str(port):
        pytest.skip(f"the test server URL lists several hosts ({host}); PgBouncer needs one")
    return f"host={host} port={port} user={user}"


def _account_to_run_as(server_url: str) -> pwd.struct_passwd:
    """`postgres`; for a server on a Unix socket in a folder of another non-root account
    (the embedded server's data folder, private to its own account), that account."""
    host = conninfo_to_dict(server_url).get("host") or ""
    if host.startswith("/"):
        try:
            owner = os.stat(host).st_uid
        except OSError:
            owner = 0
        if owner != 0:
            return pwd.getpwuid(owner)
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no `postgres` OS user to run pgbouncer")


class PgBouncer:
    """One running pgbouncer process; `url(db_url)` routes a test's URL through it."""

    def __init__(self, port: int, mode: str, process: subprocess.Popen, log: Path) -> None:
        self.port = port
        self.mode = mode
        self.process = process
        self.log = log

    def url(self, db_url: str) -> str:
        """db_url's database and user, reached through this pooler."""
        params = conninfo_to_dict(db_url)
        return make_conninfo(
            "",
            host="127.0.0.1",
            port=str(self.port),
            dbname=params.get("dbname") or "postgres",
            user=params.get("user") or "postgres",
        )

    def log_tail(self) -> str:
        try:
            return self.log.read_text()[-3000:]
        except OSError:
            return "<no log>"


@contextmanager
def running_pgbouncer(
    server_url: str, *, mode: str, pool_size: int = 20, extra: dict[str, str] | None = None
) -> Iterator[PgBouncer]:
    """Start pgbouncer in `mode` (session, transaction, statement); stop it whatever happens.

    `extra` adds settings to the [pgbouncer] section (e.g. server_round_robin).

    Its folder is a new one directly under the system temp folder: pytest's own
    temp folders are private to root, and PgBouncer runs as `postgres`.
    """
    binary = pgbouncer_binary()
    workdir = Path(tempfile.mkdtemp(prefix="reminders-pgbouncer-"))
    port = free_port()
    log = workdir / "pgbouncer.log"
    config = workdir / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = {_target(server_url)}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = any\n"
        f"pool_mode = {mode}\n"
        f"default_pool_size = {pool_size}\n"
        "max_client_conn = 500\n"
        f"logfile = {log}\n"
        f"pidfile = {workdir / 'pgbouncer.pid'}\n"
        # Tests about leftovers must see them, not have PgBouncer clean them up.
        "server_idle_timeout = 600\n"
        "log_connections = 0\n"
        "log_disconnections = 0\n"
        + "".join(f"{key} = {value}\n" for key, value in (extra or {}).items())
    )
    as_user: dict[str, object] = {}
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root.
        account = _account_to_run_as(server_url)
        os.chown(workdir, account.pw_uid, account.pw_gid)
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    # Its console output goes to a file: a pipe nobody reads would fill up and
    # stop PgBouncer, which writes its log there too.
    with (workdir / "stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [binary, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            **as_user,  # type: ignore[arg-type]
        )
    bouncer = PgBouncer(port, mode, process, log)
    try:
        _wait_until_serving(bouncer, server_url)
        yield bouncer
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_until_serving(bouncer: PgBouncer, server_url: str) -> None:
    """Wait until a query goes through; skip if PgBouncer cannot reach this server."""
    url = bouncer.url(server_url)
    deadline = time.monotonic() + START_TIMEOUT_S
    last_error = ""
    while time.monotonic() < deadline:
        if bouncer.process.poll() is not None:
            err = (bouncer.log.parent / "stderr").read_text(errors="replace")[-2000:]
            code = bouncer.process.returncode
            pytest.fail(f"pgbouncer exited at start ({code}): {err}\n{bouncer.log_tail()}")
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last_error = str(exc).strip()
            time.sleep(0.1)
    if "socket" in last_error.lower() or "permission" in bouncer.log_tail().lower():
        pytest.skip(
            "pgbouncer, running as the `postgres` OS user, cannot reach the test server "
            f"({_target(server_url)}): {last_error}"
        )
    pytest.fail(
        f"pgbouncer did not serve within {START_TIMEOUT_S}s: {last_error}\n{bouncer.log_tail()}"
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
