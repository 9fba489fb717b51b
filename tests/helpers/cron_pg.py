"""A private PostgreSQL 15 cluster with pg_cron preloaded, for the pg_cron recipe's tests.

Debian's `postgresql-15` binaries and its `postgresql-15-cron` extension, in a new
data folder under the system temp folder, listening on a free loopback port (and a
Unix socket in that folder), stopped and removed whatever happens. PostgreSQL refuses
to run as root: when the tests do, the cluster runs as the `postgres` OS user.

pg_cron runs its jobs in background workers (`cron.use_background_workers`), so no
password or pg_hba rule is needed for the role a job runs as; `cron.database_name` is
the one database it schedules in.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from psycopg.conninfo import make_conninfo

from tests.helpers.ports import free_port

PACKAGE = "postgresql-15-cron"
BINDIR = Path("/usr/lib/postgresql/15/bin")
CONTROL = Path("/usr/share/postgresql/15/extension/pg_cron.control")
DATABASE = "reminders"


def _require_pg_cron() -> None:
    if not (BINDIR / "postgres").exists() or not CONTROL.exists():
        pytest.skip(
            f"pg_cron for PostgreSQL 15 is not installed: install the Debian package "
            f"`{PACKAGE}` (apt-get update && apt-get install -y {PACKAGE}); .ci/run does"
        )


@contextmanager
def private_cron_postgres() -> Iterator[str]:
    """Start the cluster; yields a superuser URL to its `reminders` database."""
    _require_pg_cron()
    base = Path(tempfile.mkdtemp(prefix="reminders-cron-pg-"))
    pgdata = base / "pgdata"
    as_user: dict[str, object] = {}
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` OS user to run PostgreSQL")
        os.chown(base, account.pw_uid, account.pw_gid)
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    port = free_port()

    def run(*argv: str, timeout: float = 60) -> None:
        subprocess.run(argv, check=True, capture_output=True, timeout=timeout, cwd=base, **as_user)  # type: ignore[call-overload]

    started = False
    try:
        run(str(BINDIR / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust", "-E",
            "UTF8", "--no-sync")  # fmt: skip
        with (pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {port}\n"
                f"unix_socket_directories = '{base}'\n"
                "shared_preload_libraries = 'pg_cron'\n"
                f"cron.database_name = '{DATABASE}'\n"
                "cron.use_background_workers = on\n"
                "max_worker_processes = 16\n"
                "fsync = off\n"
            )
        run(str(BINDIR / "pg_ctl"), "-D", str(pgdata), "-l", str(base / "log"), "-w", "-t",
            "60", "start")  # fmt: skip
        started = True
        server = make_conninfo("", host="127.0.0.1", port=str(port), user="postgres")
        import psycopg

        with psycopg.connect(make_conninfo(server, dbname="postgres"), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {DATABASE}")
        yield make_conninfo(server, dbname=DATABASE)
    except subprocess.CalledProcessError as exc:
        log = (base / "log").read_text(errors="replace")[-2000:] if (base / "log").exists() else ""
        pytest.fail(f"the private PostgreSQL failed: {exc.stderr!r}\n{log}")
    finally:
        if started:
            with suppress(Exception):
                run(str(BINDIR / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)
