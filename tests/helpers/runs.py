"""Helpers for tests that drive the real `reminders` command in separate processes.

Shared by tests/acceptance and tests/integration (the `reminders_cli` fixture is in
tests/conftest.py).

Children write stdout and stderr to files (a busy run logs a line per batch; a pipe
nobody reads would stall it), every wait is bounded, and every child still alive
when a test ends is killed.

To keep a run inside its lock window for as long as a test needs, without any hook
in the code under test, tests block it in the database itself: a second session
takes a SHARE lock on `notifications` (or holds an uncommitted row with the natural
key the run is about to insert), so the run's dispatch INSERT waits until the test
lets go. The run holds its advisory lock the whole time, exactly as a slow run would.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg.rows import dict_row

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.lock_keys import LOCK_KEY, LockKey
from reminders_pipeline.db.seed import seed
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.due_rule import reminder_due_on

REMINDERS_BIN = Path(sys.executable).with_name("reminders")
FOLLOW_UP = "follow_up_reminder"
DEFAULT_INTERVAL = 10
MAX_PER_SILENCE = 3
# A `reminders run` boots Dagster (a few seconds of CPU); eight at once on two cores
# take a while. Generous, but bounded.
RUN_TIMEOUT_S = 120

T = TypeVar("T")


# ------------------------------------------------------------------ waiting


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> T:
    """Poll probe() until it returns something truthy; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------ processes


@dataclass
class Finished:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    pid: int

    def json(self) -> Any:
        """The one JSON document on stdout (fails the test if stdout is anything else)."""
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError:
            pytest.fail(
                f"`reminders {' '.join(self.args)}` did not print one JSON document on stdout:\n"
                f"stdout: {self.stdout!r}\nstderr (tail): {self.stderr[-2000:]}"
            )

    def describe(self) -> str:
        return (
            f"`reminders {' '.join(self.args)}` exited {self.returncode}\n"
            f"stdout: {self.stdout[-2000:]}\nstderr (tail): {self.stderr[-3000:]}"
        )


class Child:
    """A running `reminders` process with its output in files."""

    def __init__(self, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.args = tuple(argv[1:])
        self._out = (workdir / "stdout").open("w+")
        self._err = (workdir / "stderr").open("w+")
        self.popen = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            cwd=workdir,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        """stdout so far."""
        return self._read(self._out)

    def errors(self) -> str:
        """stderr so far."""
        return self._read(self._err)

    def wait(self, timeout: float = RUN_TIMEOUT_S) -> Finished:
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(
                f"`reminders {' '.join(self.args)}` still running after {timeout:.0f}s "
                f"(killed); stderr tail: {self._read(self._err)[-2000:]}"
            )
        return self.finished()

    def finished(self) -> Finished:
        assert self.popen.returncode is not None
        return Finished(
            self.args,
            self.popen.returncode,
            self._read(self._out),
            self._read(self._err),
            self.pid,
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        self._out.close()
        self._err.close()

    @staticmethod
    def _read(f: Any) -> str:
        f.flush()
        f.seek(0)
        return f.read()


class RemindersCli:
    """Spawns `reminders` with the test's environment; kills leftovers at teardown."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.children: list[Child] = []
        self._ids = itertools.count(1)

    def start(self, *args: str, env: dict[str, str] | None = None) -> Child:
        """Start `reminders ARGS`."""
        return self.start_command([str(REMINDERS_BIN), *args], env=env)

    def start_command(self, argv: list[str], env: dict[str, str] | None = None) -> Child:
        """Start any command with the same environment and housekeeping."""
        workdir = self.workdir / f"child-{next(self._ids)}"
        workdir.mkdir(parents=True)
        child = Child(argv, {**self.env, **(env or {})}, workdir)
        self.children.append(child)
        return child

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT_S
    ) -> Finished:
        """Run `reminders ARGS` to the end."""
        return self.start(*args, env=env).wait(timeout)

    @classmethod
    def for_test(cls, reminders_env: dict[str, str], tmp_path: Path) -> RemindersCli:
        """Children get the test's environment (database, homes), nothing else changed."""
        assert REMINDERS_BIN.exists(), f"{REMINDERS_BIN} is missing: run `python3 dev.py test`"
        env = {**os.environ, **reminders_env, "PYTHONUNBUFFERED": "1"}
        # Children must not inherit a batch size from the shell; tests set it per child.
        env.pop("REMINDERS_BATCH_SIZE", None)
        return cls(env, tmp_path / "children")

    def __enter__(self) -> RemindersCli:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill every child still running."""
        for child in self.children:
            child.close()


# ------------------------------------------------------------------ the lock, observed


def lock_holder(url: str) -> dict[str, Any] | None:
    """pid and application_name of the session holding the run lock, or None."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            """
            SELECT l.pid, a.application_name
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid AND l.objsubid = 2
            """,
            LOCK_KEY,
        ).fetchone()


def wait_for_run_holding_lock(url: str, child: Child, timeout: float = 60) -> dict[str, Any]:
    """Wait until a `reminders-run:` session holds the lock; fail early if the child exits."""

    def probe() -> dict[str, Any] | None:
        if not child.alive():
            pytest.fail(f"the run exited before it held the lock:\n{child.finished().describe()}")
        holder = lock_holder(url)
        if holder and (holder["application_name"] or "").startswith("reminders-run:"):
            return holder
        return None

    return wait_for(probe, timeout=timeout, what="a reminders run to hold the run lock")


def wait_for_run_at_the_gate(
    url: str, child: Child, timeout: float = 90
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Wait until the child's run holds the lock and its dispatch INSERT waits behind a
    closed gate (a NotificationsGate, or an uncommitted row with the run's next key);
    the lock's holder and the sessions waiting."""
    holder = wait_for_run_holding_lock(url, child, timeout)

    def probe() -> list[dict[str, Any]]:
        if not child.alive():
            pytest.fail(f"the run exited before the gate:\n{child.finished().describe()}")
        return backends_waiting_on(url, "notifications")

    return holder, wait_for(probe, timeout=timeout, what="the run's INSERT to wait at the gate")


def backends_waiting_on(url: str, relation: str) -> list[dict[str, Any]]:
    """Sessions waiting for a lock on `relation` (table or its rows): blocked runs."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            """
            SELECT a.pid, a.query
            FROM pg_stat_activity a
            WHERE a.datname = current_database()
              AND a.wait_event_type = 'Lock'
              AND a.query ILIKE %s
            """,
            (f"%INSERT INTO {relation}%",),
        ).fetchall()


class NotificationsGate:
    """Holds dispatch at its first INSERT into notifications until opened.

    A SHARE lock conflicts with the ROW EXCLUSIVE lock every INSERT needs; reads
    (selecting, counting, the run log) go on. A run that reaches dispatch waits
    there with its advisory lock held.
    """

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url)
        self.conn.execute("LOCK TABLE notifications IN SHARE MODE")
        self.pid = self.conn.info.backend_pid

    def open(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()


def hold_one_reminder(url: str, expected: set[Key]) -> psycopg.Connection:
    """A session that inserts, and does not commit, the reminder two thirds of the way
    through `expected`: a run commits the batches before it, then its dispatch waits on
    that row until the session rolls back or ends."""
    assignment, kind, due_on, sequence = sorted(expected)[len(expected) * 2 // 3]
    conn = psycopg.connect(url)
    conn.execute(
        "INSERT INTO notifications (assignment_id, mentor_id, kind, due_on, "
        "silence_started_on, sequence) "
        "SELECT id, mentor_id, %s, %s, last_contact_date, %s FROM assignments WHERE id = %s",
        (kind, due_on, sequence, assignment),
    )
    return conn


# ------------------------------------------------------------------ data and invariants


def today() -> date:
    """The organisation's today: the date a run without --as-of uses."""
    return ReminderSettings().today()


def seed_assignments(db: Database, count: int, due_fraction: float, as_of: date) -> None:
    seed(
        db,
        assignments=count,
        due_fraction=due_fraction,
        today=as_of,
        default_interval_days=DEFAULT_INTERVAL,
    )


Key = tuple[int, str, date, int]


def expected_due_set(db: Database, as_of: date) -> set[Key]:
    """(assignment, kind, due_on, sequence) that a run for as_of must create.

    The rule written out again here, not taken from queries.sql: reminder number
    floor(days silent / interval), capped per silence, counted from the last contact.
    """
    with db.connection() as conn:
        rows = conn.execute(
            """
            SELECT id, last_contact_date + n * interval_days AS due_on, n
            FROM (
                SELECT id, last_contact_date, interval_days,
                       least(floor((%(as_of)s::date - last_contact_date)::numeric
                                   / interval_days)::int, %(cap)s) AS n
                FROM (
                    SELECT id, last_contact_date,
                           CASE WHEN reminder_interval_days IS NULL THEN %(default)s
                                ELSE reminder_interval_days END AS interval_days
                    FROM assignments
                    WHERE status = 'active'
                ) a
            ) s
            WHERE n >= 1
            """,
            {"as_of": as_of, "cap": MAX_PER_SILENCE, "default": DEFAULT_INTERVAL},
        ).fetchall()
    return {(r["id"], FOLLOW_UP, r["due_on"], r["n"]) for r in rows}


def expected_due_set_in_python(db: Database, as_of: date) -> set[Key]:
    """The same set from reminder_due_on (the pure rule); for small data sets."""
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT id, last_contact_date, reminder_interval_days FROM assignments "
            "WHERE status = 'active'"
        ).fetchall()
    out: set[Key] = set()
    for r in rows:
        due = reminder_due_on(
            r["last_contact_date"],
            r["reminder_interval_days"] or DEFAULT_INTERVAL,
            as_of,
            MAX_PER_SILENCE,
        )
        if due:
            out.add((r["id"], FOLLOW_UP, due[1], due[0]))
    return out


def notification_keys(db: Database) -> list[Key]:
    """Every notification's (assignment, kind, due_on, sequence), duplicates kept."""
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT assignment_id, kind, due_on, sequence FROM notifications"
        ).fetchall()
    return [(r["assignment_id"], r["kind"], r["due_on"], r["sequence"]) for r in rows]


def assert_notifications_are_exactly(db: Database, expected: set[Key]) -> None:
    got = notification_keys(db)
    dupes = [k for k, n in Counter((a, kind, due) for a, kind, due, _ in got).items() if n > 1]
    assert not dupes, f"{len(dupes)} reminders exist more than once, e.g. {dupes[:3]}"
    got_set = set(got)
    missing, extra = expected - got_set, got_set - expected
    assert not missing and not extra, (
        f"{len(missing)} due reminders missing (e.g. {sorted(missing)[:3]}), "
        f"{len(extra)} unexpected (e.g. {sorted(extra)[:3]})"
    )


def run_rows(db: Database) -> list[dict[str, Any]]:
    with db.connection() as conn:
        return conn.execute("SELECT * FROM reminder_runs ORDER BY id").fetchall()


def assert_no_overlapping_windows(rows: list[dict[str, Any]]) -> None:
    """No two runs that held the lock (success, running, failed, abandoned) overlap in time."""
    held = [r for r in rows if r["status"] != "skipped"]
    for r in held:
        assert r["finished_at"] is not None, f"run {r['id']} is still {r['status']}"
    held.sort(key=lambda r: r["started_at"])
    for earlier, later in itertools.pairwise(held):
        assert earlier["finished_at"] <= later["started_at"], (
            f"runs {earlier['id']} ({earlier['status']}, {earlier['started_at']} .. "
            f"{earlier['finished_at']}) and {later['id']} ({later['status']}, "
            f"from {later['started_at']}) held the lock at the same time"
        )


def assert_skipped_rows_name_a_holder(rows: list[dict[str, Any]]) -> None:
    """Every run that did not hold the lock is 'skipped' and says who did."""
    for r in rows:
        if r["status"] == "success":
            continue
        assert r["status"] == "skipped", f"run {r['id']} is {r['status']}: {r['error']}"
        assert r["blocked_by_pid"] is not None, f"skipped run {r['id']} names no holder"
        assert (r["blocked_by_application_name"] or "").startswith("reminders-run:")
        assert r["blocked_by_run_id"], f"skipped run {r['id']} names no holder run id"


# ------------------------------------------------------------------ fault trials


def trials_from_env(name: str, default: int) -> int:
    """How many trials a soak runs: small by default (CI), more by hand (NAME=30)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        pytest.fail(f"{name} must be a whole number, got {raw!r}")
    if value < 1:
        pytest.fail(f"{name} must be at least 1, got {value}")
    return value


def run_sessions(url: str) -> list[dict[str, Any]]:
    """Server sessions of reminders runs (application_name `reminders-run:…`) on this
    database, with what each is doing: a run's lock session and anything it left behind."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            """
            SELECT pid, application_name, state, query, backend_start
            FROM pg_stat_activity
            WHERE datname = current_database() AND application_name LIKE 'reminders-run:%%'
            """
        ).fetchall()


def client_sessions(url: str, exclude: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    """Every client session on this database but the caller's and `exclude`: with no
    run going, whatever is here was left behind by one (its lock session or another
    connection still running a statement)."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            """
            SELECT pid, application_name, state, wait_event_type, query
            FROM pg_stat_activity
            WHERE datname = current_database() AND backend_type = 'client backend'
              AND pid <> pg_backend_pid() AND NOT pid = ANY(%s)
            """,
            (list(exclude),),
        ).fetchall()


def advisory_locks(url: str, excluding: LockKey | None = None) -> list[dict[str, Any]]:
    """Every advisory lock, held or awaited, on this database (the run lock, the
    migration lock, or any other key) but `excluding`'s, on any server connection
    (excluding=DISPATCH_LOCK: a dispatch batch's transaction-level lock lives only
    during the batch)."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            """
            SELECT pid, classid::bigint AS classid, objid::bigint AS objid, objsubid, granted
            FROM pg_locks
            WHERE locktype = 'advisory'
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND (classid, objid) IS DISTINCT FROM (%s::bigint::oid, %s::bigint::oid)
            """,
            excluding or (None, None),
        ).fetchall()


def reset_notifications(db: Database) -> None:
    """Forget every reminder, so the next trial's run has all of them to create again."""
    with db.connection() as conn:
        conn.execute("DELETE FROM notifications")


def assert_no_overlapping_successes(rows: list[dict[str, Any]]) -> None:
    """No two 'success' runs' [started_at, finished_at] intervals overlap."""
    done = sorted((r for r in rows if r["status"] == "success"), key=lambda r: r["started_at"])
    for r in done:
        assert r["finished_at"] is not None, f"success run {r['id']} has no finished_at"
    for earlier, later in itertools.pairwise(done):
        assert earlier["finished_at"] <= later["started_at"], (
            f"success runs {earlier['id']} ({earlier['started_at']} .. {earlier['finished_at']})"
            f" and {later['id']} ({later['started_at']} .. {later['finished_at']}) overlap"
        )


def assert_settled(db: Database, url: str, expected: set[Key]) -> None:
    """What must hold after every trial, whatever was done to the runs before:
    exactly the undisturbed reminders, once each; no lock, no `running` row, no
    reminders session left on the server; successes never overlapping."""
    assert_notifications_are_exactly(db, expected)
    holder = lock_holder(url)
    assert holder is None, f"the run lock is still held: {holder}"
    advisory = advisory_locks(url)
    assert not advisory, f"advisory locks left in pg_locks: {advisory}"
    rows = run_rows(db)
    running = [(r["id"], r["dagster_run_id"]) for r in rows if r["status"] == "running"]
    assert not running, f"reminder_runs rows left 'running': {running}"
    assert_no_overlapping_successes(rows)
    # A closed connection's backend takes a moment to leave pg_stat_activity.
    deadline = time.monotonic() + 5
    while (sessions := client_sessions(url)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sessions, f"sessions of runs left on the server: {sessions}"
