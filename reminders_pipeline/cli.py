"""The `reminders` command."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import traceback
from datetime import date, datetime
from typing import Any

import click
import psycopg

from reminders_pipeline.errors import ConfigError, RemindersError
from reminders_pipeline.settings import ReminderSettings, parse_as_of


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, default=_json_default))


def _url() -> str:
    from reminders_pipeline.db.url import database_url

    return database_url()


def _require_migrated(url: str) -> None:
    from reminders_pipeline.db.migrate import current_revision, head_revision

    current, head = current_revision(url), head_revision()
    if current != head:
        raise ConfigError(
            f"the reminders database schema is at {current or 'nothing'}, the code needs {head}: "
            "run `reminders db upgrade`"
        )


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more (SQL steps, Dagster events).")
def cli(verbose: bool) -> None:
    """Daily follow-up reminders for peer mentors.

    The database is REMINDERS_DATABASE_URL; when it is unset, an embedded
    PostgreSQL starts under REMINDERS_HOME (default ./.reminders).
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# ------------------------------------------------------------------ db


@cli.group()
def db() -> None:
    """Schema migrations and the embedded server."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply missing migrations (a no-op when the schema is current).

    Never under a run: with something to apply, it waits for the run lock (up to
    REMINDERS_MIGRATION_LOCK_WAIT_S, default 60) and refuses if a run still holds it.
    """
    from reminders_pipeline.db.migrate import upgrade

    def waiting(holder: Any) -> None:
        click.echo(f"waiting for the reminders run lock, held by {holder.describe()} ...", err=True)

    before, after = upgrade(_url(), on_wait=waiting)
    if before == after:
        click.echo(f"schema already at {after}")
    else:
        click.echo(f"schema upgraded from {before or 'nothing'} to {after}")


def _embedded_in_use() -> bool:
    from reminders_pipeline.db.url import ENV_VAR

    return not (os.environ.get(ENV_VAR) or "").strip()


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def db_status(as_json: bool) -> None:
    """Show the schema revision of the database and of the code, and which server it is.

    Never starts the embedded server: when it is not running, says so.
    """
    from reminders_pipeline.db.migrate import current_revision, head_revision
    from reminders_pipeline.db.url import describe, embedded_pgdata, embedded_status

    data: dict[str, Any] = {"code": head_revision(), "database": None, "embedded": None}
    if _embedded_in_use():
        status = embedded_status(embedded_pgdata())
        data["embedded"] = {
            "running": status.running,
            "pid": status.pid,
            "port": status.port,
            "socket_dir": status.socket_dir,
            "pgdata": str(status.pgdata),
            "used_by_pids": status.users,
        }
        if status.running:
            data["database"] = current_revision(_url()) or "nothing"
        server = (
            f"embedded PostgreSQL: running, pid {status.pid}, port {status.port}, "
            f"socket {status.socket_dir}, data {status.pgdata}; used by pids "
            f"{', '.join(map(str, status.users)) or 'none'} (`reminders db stop` stops it)"
            if status.running
            else f"embedded PostgreSQL: not running (data {status.pgdata}); "
            "any reminders command starts it"
        )
    else:
        url = _url()
        data["database"] = current_revision(url) or "nothing"
        server = f"server: {describe(url)} (REMINDERS_DATABASE_URL; not embedded)"
    if as_json:
        _print_json(data)
        return
    schema = data["database"] or "unknown (server not running)"
    click.echo(f"database: {schema}; code: {data['code']}")
    click.echo(server)


@db.command("stop")
@click.option("--force", is_flag=True, help="Stop it even while other processes use it.")
def db_stop(force: bool) -> None:
    """Stop the embedded PostgreSQL (it also stops when the last process using it exits)."""
    from reminders_pipeline.db.url import embedded_pgdata, stop_embedded

    if not _embedded_in_use():
        raise ConfigError(
            "REMINDERS_DATABASE_URL is set: that server is not embedded, stop it where it runs"
        )
    status = stop_embedded(embedded_pgdata(), force=force)
    if status.running:
        click.echo(f"stopped the embedded PostgreSQL (pid {status.pid}) in {status.pgdata}")
    else:
        click.echo(f"the embedded PostgreSQL in {status.pgdata} is not running")


# ------------------------------------------------------------------ seed


@cli.command()
@click.option("--assignments", "count", type=int, required=True, help="How many assignments.")
@click.option("--due-fraction", type=float, default=0.1, show_default=True, help="Share due today.")
@click.option("--reset", is_flag=True, help="Empty the reminders tables first.")
def seed(count: int, due_fraction: float, reset: bool) -> None:
    """Write synthetic mentors, assignments and activities."""
    from reminders_pipeline.db.connector import Database
    from reminders_pipeline.db.seed import seed as seed_data

    if count < 0:
        raise ConfigError(f"--assignments must be zero or more, got {count}")
    if not 0.0 <= due_fraction <= 1.0:
        raise ConfigError(f"--due-fraction must be between 0 and 1, got {due_fraction}")
    url = _url()
    _require_migrated(url)
    settings = ReminderSettings.from_env()
    started = time.perf_counter()
    show = sys.stderr.isatty()
    with click.progressbar(length=count, label="seeding", file=sys.stderr, hidden=not show) as bar:
        result = seed_data(
            Database(url),
            assignments=count,
            due_fraction=due_fraction,
            today=settings.today(),
            default_interval_days=settings.default_interval_days,
            reset=reset,
            on_progress=bar.update,
        )
    click.echo(
        f"seeded {result.assignments} assignments for {result.mentors} mentors "
        f"in {time.perf_counter() - started:.1f}s"
    )


# ------------------------------------------------------------------ run


def _run(as_of: str | None, as_json: bool) -> dict[str, Any]:
    from reminders_pipeline.orchestration.launch import check_partition, run_reminders_job

    settings = ReminderSettings.from_env()
    day = parse_as_of(as_of) if as_of else settings.today()
    check_partition(day)
    url = _url()
    _require_migrated(url)
    if not as_json:
        click.echo(f"running the reminders job for {day} ...", err=True)
    return run_reminders_job(url, day)


def _print_summary(summary: dict[str, Any]) -> None:
    line = (
        f"{summary['status']}: run {summary['run_id']} for {summary['as_of']}: "
        f"{summary['selected']} due, {summary['created']} reminders created, "
        f"{summary['already_existed']} already existed, {summary['duration_s']:.2f}s"
    )
    click.echo(line)
    if summary.get("blocked_by"):
        b = summary["blocked_by"]
        click.echo(f"  lock held by pid {b['pid']} (run {b['run_id']}, since {b['since']})")
    if summary.get("error"):
        click.echo(f"  error: {summary['error']}")


@cli.command()
@click.option("--as-of", help="The date to run for (YYYY-MM-DD); default today.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def run(ctx: click.Context, as_of: str | None, as_json: bool) -> None:
    """Run the reminders job once (the same job the schedule launches)."""
    summary = _run(as_of, as_json)
    if as_json:
        _print_json(summary)
    else:
        _print_summary(summary)
    ctx.exit(0 if summary["status"] in ("success", "skipped") else 1)


@cli.command()
@click.option("--assignments", "count", type=int, default=10_000, show_default=True)
@click.option("--due-fraction", type=float, default=0.2, show_default=True)
@click.pass_context
def demo(ctx: click.Context, count: int, due_fraction: float) -> None:
    """Migrate, seed fresh demo data, run the job once and show what happened."""
    ctx.invoke(db_upgrade)
    ctx.invoke(seed, count=count, due_fraction=due_fraction, reset=True)
    summary = _run(None, False)
    _print_summary(summary)
    click.echo("execution log (newest first):")
    ctx.invoke(runs, limit=5, as_json=False)
    ctx.exit(0 if summary["status"] in ("success", "skipped") else 1)


@cli.command()
@click.option("--since", help="First day (YYYY-MM-DD); default 30 days ago.")
@click.option("--until", help="Last day (YYYY-MM-DD); default today.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def missing(since: str | None, until: str | None, as_json: bool) -> None:
    """Days whose reminders were never created (skipped, failed or never run).

    From the Dagster instance (DAGSTER_HOME, or the CLI's own): the days without a
    materialization of reminders/daily_reminders. Prints them comma-separated, for
    `dagster job backfill -j reminders_job --partitions ...` or the UI's backfill dialog.
    """
    from datetime import timedelta

    from reminders_pipeline.orchestration.launch import dagster_instance, missing_days

    today = ReminderSettings.from_env().today()
    first = parse_as_of(since) if since else today - timedelta(days=30)
    last = parse_as_of(until) if until else today
    if first > last:
        raise ConfigError(f"--since {first} is after --until {last}")
    with dagster_instance() as instance:
        days = missing_days(instance, first, last)
    if as_json:
        _print_json(days)
        return
    click.echo(f"{len(days)} day(s) from {first} to {last} not done", err=True)
    if days:
        click.echo(",".join(days))


@cli.command()
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def runs(limit: int, as_json: bool) -> None:
    """The execution log, newest first."""
    from reminders_pipeline.core.runlog import RunLog
    from reminders_pipeline.db.connector import Database

    rows = RunLog(Database(_url())).recent(limit=limit)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        click.echo("no runs yet")
    for r in rows:
        duration = f"{r['duration_s']:.2f}s" if r["duration_s"] is not None else "-"
        line = (
            f"#{r['id']:<5} {r['status']:<9} as of {r['as_of']}  "
            f"started {r['started_at']:%Y-%m-%d %H:%M:%S%z}  {duration:>8}  "
            f"due {r['selected'] if r['selected'] is not None else '-'}  "
            f"created {r['created'] if r['created'] is not None else '-'}  ({r['trigger']})"
        )
        click.echo(line)
        if r["error"]:
            click.echo(f"       {r['error']}")


# ------------------------------------------------------------------ ui

WORKSPACE_YAML = """\
# Written by `reminders ui`: the code location, named as in the repository's workspace.yaml.
load_from:
  - python_module:
      module_name: reminders_pipeline.orchestration.definitions
      location_name: reminders_pipeline
"""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _in_terminal_foreground() -> bool:
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):
        return False


@cli.command()
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
    from reminders_pipeline.orchestration.launch import default_dagster_home, prepare_dagster_home

    home = default_dagster_home()
    click.echo(f"Dagster home {prepare_dagster_home(home)}", err=True)
    workspace = home / "workspace.yaml"
    workspace.write_text(WORKSPACE_YAML)
    url = _url()  # this process holds the embedded server while dagster dev runs
    if not no_upgrade:
        before, after = upgrade(url)
        if before != after:
            click.echo(f"schema upgraded from {before or 'nothing'} to {after}", err=True)
    env = {**os.environ, "DAGSTER_HOME": str(home), "REMINDERS_DATABASE_URL": url}
    env.setdefault("REMINDERS_DAGSTER_UI_URL", f"http://{host}:{port}")
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    argv = [dagster, "dev", "-w", str(workspace), "-h", host, "-p", str(port)]
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


# ------------------------------------------------------------------ lock


@cli.group()
def lock() -> None:
    """The run lock."""


@lock.command("status")
@click.option("--json", "as_json", is_flag=True)
def lock_status(as_json: bool) -> None:
    """Free, or held by whom."""
    from reminders_pipeline.core.lock import LOCK_KEY, find_lock_holder
    from reminders_pipeline.db.connector import connect

    with connect(_url(), autocommit=True) as conn:
        holder = find_lock_holder(conn)
    if as_json:
        _print_json(
            {
                "lock_key": list(LOCK_KEY),
                "held": holder is not None,
                "holder": None
                if holder is None
                else {
                    "pid": holder.pid,
                    "application_name": holder.application_name,
                    "since": holder.since,
                    "client_addr": holder.client_addr,
                    "run_id": holder.run_id,
                },
            }
        )
    elif holder is None:
        click.echo(f"free (advisory lock {LOCK_KEY[0]}, {LOCK_KEY[1]})")
    else:
        click.echo(f"held by pid {holder.pid}")
        click.echo(f"  application_name: {holder.application_name}")
        click.echo(f"  Dagster run id:   {holder.run_id or 'unknown'}")
        click.echo(f"  since:            {holder.since.isoformat() if holder.since else '?'}")
        if holder.client_addr:
            click.echo(f"  client:           {holder.client_addr}")


from reminders_pipeline.admin.cli import admin  # noqa: E402

cli.add_command(admin)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def main(argv: list[str] | None = None) -> None:
    """Entry point: every expected error is one line on stderr and a non-zero exit."""
    try:
        code = cli.main(args=argv, prog_name="reminders", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except RemindersError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except psycopg.Error as exc:
        click.echo(f"error: database error: {_first_line(exc)}", err=True)
        sys.exit(1)
    except Exception as exc:
        # A bug or an environment problem we did not foresee: still one line, and
        # the traceback for whoever asks for it.
        args = sys.argv[1:] if argv is None else argv
        if "-v" in args or "--verbose" in args:
            traceback.print_exc()
        click.echo(
            f"error: unexpected {type(exc).__name__}: {_first_line(exc)} "
            "(run with -v for the traceback)",
            err=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
