"""`reminders db status` / `reminders db stop` and the embedded server's lifetime, with real
processes: the server stops when the last process using it exits, even when an earlier
user was killed by a signal (its handle would otherwise keep the server up for ever)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from reminders_pipeline.db.embedded import embedded_status
from tests.helpers.ports import free_port
from tests.helpers.runs import Child, RemindersCli, wait_for

# Dagster processes start CPU-bound and these tests bound their waits: under xdist
# (.ci/run) they share one worker, so one Dagster deployment starts at a time.
pytestmark = [pytest.mark.acceptance, pytest.mark.xdist_group("dagster")]

HOLD = """
import sys, time
from reminders_pipeline.db.embedded import ensure_database_url
ensure_database_url()  # start or join the embedded server, holding a handle until exit
print("ready", flush=True)
time.sleep(600)
"""


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[RemindersCli]:
    env = {
        **os.environ,
        "REMINDERS_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REMINDERS_DATABASE_URL", None)
    (tmp_path / "dagster").mkdir()
    with RemindersCli(env, tmp_path / "children") as cli:
        try:
            yield cli
        finally:
            status = embedded_status(tmp_path / "home" / "pgdata")
            if status.running and status.pid:  # whatever happened, leave no server behind
                os.kill(status.pid, signal.SIGINT)


def status(cli: RemindersCli) -> dict:
    done = cli("db", "status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_status_shows_the_server_stop_stops_it_and_the_last_user_stops_it(
    cli: RemindersCli, tmp_path: Path
) -> None:
    pgdata = (tmp_path / "home" / "pgdata").resolve()
    assert status(cli)["embedded"] == {
        "running": False,
        "pid": None,
        "port": None,
        "socket_dir": None,
        "pgdata": str(pgdata),
        "used_by_pids": [],
    }, "status must not start the server"

    # A command that starts the server stops it when it exits: it was the last user.
    upgraded = cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert status(cli)["embedded"]["running"] is False

    holder = cli.start_command([sys.executable, "-c", HOLD])
    wait_for(lambda: "ready" in holder.output(), timeout=60, what="the holder")
    seen = status(cli)
    server = seen["embedded"]
    assert server["running"] is True and server["used_by_pids"] == [holder.pid]
    assert seen["database"] == seen["code"], "the schema revision is shown too"
    text = cli("db", "status").stdout
    assert f"running, pid {server['pid']}" in text and str(pgdata) in text
    with psycopg.connect(
        f"host={server['socket_dir']} port={server['port']} user=postgres dbname=postgres"
    ) as conn:
        assert conn.execute("SELECT pg_backend_pid() > 0").fetchone() == (True,)

    refused = cli("db", "stop")
    assert refused.returncode == 1
    assert f"in use by pids {holder.pid}" in refused.stderr
    assert status(cli)["embedded"]["running"] is True

    # Killed by a signal, the holder never releases its handle...
    holder.kill(signal.SIGKILL)
    # ...yet the next user, when it exits, is the last one and stops the server.
    again = cli("db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert status(cli)["embedded"]["running"] is False

    # `reminders db stop` stops a server a live process still uses, with --force.
    holder = cli.start_command([sys.executable, "-c", HOLD])
    wait_for(lambda: "ready" in holder.output(), timeout=60, what="the holder")
    pid = status(cli)["embedded"]["pid"]
    stopped = cli("db", "stop", "--force")
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped the embedded PostgreSQL (pid {pid})" in stopped.stdout
    assert status(cli)["embedded"]["running"] is False
    holder.kill(signal.SIGTERM)


def test_reminders_ui_runs_on_the_embedded_server_and_stops_it_when_it_stops(
    cli: RemindersCli, tmp_path: Path
) -> None:
    port = free_port()
    ui = cli.start("ui", "--port", str(port))
    tree = psutil.Process(ui.pid)
    try:
        _check_ui(cli, ui, port)
    finally:  # whatever happened, no dagster dev is left behind
        left: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            left = [*tree.children(recursive=True), tree]
        for process in left:
            with contextlib.suppress(psutil.Error):
                process.kill()


def _check_ui(cli: RemindersCli, ui: Child, port: int) -> None:
    def serving() -> bool:
        assert ui.alive(), f"reminders ui exited:\n{ui.output()}"
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
            return True
        return False

    wait_for(serving, timeout=120, what="reminders ui to serve")
    seen = status(cli)
    # One server, held by `reminders ui` alone: the Dagster processes got its URL.
    assert seen["embedded"]["running"] is True
    assert seen["embedded"]["used_by_pids"] == [ui.pid]
    assert seen["database"] == seen["code"], "reminders ui migrates first"

    ui.popen.send_signal(signal.SIGTERM)  # passed on to dagster dev as Ctrl-C
    assert ui.popen.wait(timeout=60) == 0
    assert status(cli)["embedded"]["running"] is False, "the last user stopped the server"


def test_reminders_run_ends_without_teardown_yet_stops_the_server_it_started(
    cli: RemindersCli,
) -> None:
    """`reminders run` skips the interpreter's teardown (entry.py), not the exit handlers:
    the embedded server's stop is one, and the run's summary and exit status stay."""
    assert cli("db", "upgrade").returncode == 0
    done = cli("run", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "success"
    assert status(cli)["embedded"]["running"] is False
