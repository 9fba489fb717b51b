"""`reminders ui`: the Dagster UI on the project's instance settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click

from reminders_pipeline.cli.common import dagster_command
from reminders_pipeline.db.embedded import ensure_database_url


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _in_terminal_foreground() -> bool:
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", type=int, default=3000, show_default=True, help="Port to serve on.")
@click.option("--no-upgrade", is_flag=True, help="Do not apply missing migrations first.")
def ui(host: str, port: int, no_upgrade: bool) -> None:
    """Open the Dagster UI: `dagster dev` with the project's instance settings.

    The Dagster home is DAGSTER_HOME or REMINDERS_HOME/dagster (the CLI's own,
    so `reminders run` shows up in the UI), with the shipped dagster.yaml: the
    one-at-a-time run queue and run monitoring. The database is migrated first.
    The embedded PostgreSQL, when used, lives as long as this command.
    """
    from reminders_pipeline.db.migrate import upgrade
    from reminders_pipeline.orchestration.dagster_home import (
        default_dagster_home,
        prepare_dagster_home,
    )

    home = default_dagster_home()
    click.echo(f"Dagster home {prepare_dagster_home(home)}", err=True)
    url = ensure_database_url()  # this process holds the embedded server while dagster dev runs
    if not no_upgrade:
        before, after = upgrade(url)
        if before != after:
            click.echo(f"schema upgraded from {before or 'nothing'} to {after}", err=True)
    argv, env = dagster_command(home, url, "dev")
    argv += ["-h", host, "-p", str(port)]
    env.setdefault("REMINDERS_DAGSTER_UI_URL", f"http://{host}:{port}")
    click.echo(f"dagster dev on http://{host}:{port} (Ctrl-C stops it)", err=True)
    # Ctrl-C must work in dagster dev even when this command was started with
    # SIGINT ignored (a shell's background job), which children would inherit.
    child = subprocess.Popen(argv, env=env, preexec_fn=_default_sigint)

    def stop_child(signum: int, _frame: object) -> None:
        # Ctrl-C in a terminal reaches dagster dev itself (same process group); a
        # SIGTERM, or a SIGINT from anywhere else, is passed on as one Ctrl-C.
        if signum == signal.SIGTERM or not _in_terminal_foreground():
            child.send_signal(signal.SIGINT)

    previous = {sig: signal.signal(sig, stop_child) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.exit(code)
