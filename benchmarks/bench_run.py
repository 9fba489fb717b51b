"""Benchmark the reminders run against a minimal single-statement baseline.

    .venv/bin/python benchmarks/bench_run.py --assignments 10000
    REMINDERS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/bench_run.py --assignments 1000000 --due-fraction 0.6

The server is REMINDERS_DATABASE_URL's (a fresh database `reminders_bench_<pid>` is
created on it and dropped at the end, unless --keep), or an embedded PostgreSQL in a
temporary directory. After seeding N assignments, each round measures, every phase
from the same state (its table emptied, then a CHECKPOINT, so no phase pays for
the previous one's dirty pages):

  1.  baseline      one INSERT ... SELECT ... ON CONFLICT DO NOTHING of the due rows
                    into a minimal table: the notifications columns, a primary key,
                    the unique natural key and one foreign key (to assignments)
  1b. baseline x2   the same statement again on its full table (every row conflicts)
  1c. schema 0004   the baseline statement into a table with the constraints and
                    indexes notifications had before migration 0005 (three foreign
                    keys, three secondary indexes): what 0005 saves
  2.  services      ReminderSchedulerService.select_due + ReminderDispatchService.dispatch
  3.  services x2   the same again: the idempotent rerun (creates nothing)
  4.  cli           `reminders run --json` as a new process (Python start, imports,
                    Dagster, the run), with its peak RSS

Ratios: 1c, 2 and 4 against 1 of the same round; 3 against 1b of the same round.
Every round is printed; the summary takes the median round of each phase.
Not part of the test suite: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from bench_common import (
    bench_database,
    load_average,
    rss_mb,
    server_facts,
)

from reminders_pipeline.core.dispatch import FOLLOW_UP_REMINDER, ReminderDispatchService
from reminders_pipeline.core.due import ReminderSchedulerService
from reminders_pipeline.db.connector import Database, Session, connect
from reminders_pipeline.db.migrate import upgrade
from reminders_pipeline.db.seed import seed
from reminders_pipeline.settings import ReminderSettings

REMINDERS_BIN = Path(sys.executable).with_name("reminders")

# The same due rows the dispatch creates (reminder_due of 0004: nothing carried by a
# correction in seeded data), in one statement.
BASELINE_SQL = """
INSERT INTO {table} (
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
ON CONFLICT (assignment_id, kind, silence_started_on, sequence) DO NOTHING
"""

TABLES_SQL = """
DROP TABLE IF EXISTS bench_minimal, bench_schema_0004;
-- The baseline: primary key, the unique natural key, one foreign key.
CREATE TABLE bench_minimal (LIKE notifications INCLUDING DEFAULTS INCLUDING IDENTITY
                            INCLUDING CONSTRAINTS);
ALTER TABLE bench_minimal ADD PRIMARY KEY (id),
    ADD UNIQUE (assignment_id, kind, silence_started_on, sequence),
    ADD FOREIGN KEY (assignment_id) REFERENCES assignments (id);
-- notifications as migrations 0001-0004 left it.
CREATE TABLE bench_schema_0004 (LIKE notifications INCLUDING DEFAULTS INCLUDING IDENTITY
                                INCLUDING CONSTRAINTS);
ALTER TABLE bench_schema_0004 ADD PRIMARY KEY (id),
    ADD UNIQUE (assignment_id, kind, silence_started_on, sequence),
    ADD FOREIGN KEY (assignment_id) REFERENCES assignments (id),
    ADD FOREIGN KEY (mentor_id) REFERENCES mentors (id),
    ADD FOREIGN KEY (run_id) REFERENCES reminder_runs (id);
CREATE INDEX ON bench_schema_0004 (mentor_id, created_at DESC);
CREATE INDEX ON bench_schema_0004 (run_id);
CREATE INDEX ON bench_schema_0004 (assignment_id, due_on DESC);
"""


def backend_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of a server process on this machine, else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_since(pid: int, before: float | None) -> float | None:
    after = backend_cpu(pid)
    return None if before is None or after is None else after - before


class OneSession:
    """What ReminderSchedulerService needs of a Database, on one open session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def fetch_one(self, name: str, **params: Any) -> dict[str, Any] | None:
        return self.session.one(name, **params)


class Bench:
    def __init__(self, url: str, settings: ReminderSettings, as_of: date) -> None:
        self.url = url
        self.db = Database(url)
        self.settings = settings
        self.as_of = as_of
        self.run_id: int | None = None
        self.last_cpu: float | None = None
        self.cpu_rounds: list[dict[str, float | None]] = []

    def sql(self, statement: str, params: dict[str, Any] | None = None) -> int:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(statement, params).rowcount

    def scalar(self, statement: str) -> Any:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(statement).fetchone()[0]

    def fresh(self, table: str, *, with_run_row: bool = True) -> None:
        """`table` empty, one run-log row to stamp on reminders, nothing dirty."""
        self.sql(f"TRUNCATE {table} CASCADE")  # notifications: deliveries reference it
        self.sql("DELETE FROM reminder_runs")
        self.run_id = None
        if with_run_row:
            with psycopg.connect(self.url, autocommit=True) as conn:
                self.run_id = conn.execute(
                    "INSERT INTO reminder_runs (status, as_of, trigger) "
                    "VALUES ('running', %s, 'benchmark') RETURNING id",
                    (self.as_of,),
                ).fetchone()[0]
        self.sql("CHECKPOINT")

    def statement(self, table: str) -> int:
        with connect(self.url, autocommit=True) as session:
            before = backend_cpu(session.backend_pid)
            rows = session.execute(
                BASELINE_SQL.format(table=table),
                {
                    "kind": FOLLOW_UP_REMINDER,
                    "as_of": self.as_of,
                    "cap": self.settings.max_reminders_per_silence,
                    "default_interval": self.settings.default_interval_days,
                    "run_id": self.run_id,
                },
            ).rowcount
            self.last_cpu = cpu_since(session.backend_pid, before)
        return rows

    def services(self) -> tuple[int, int, int]:
        # Both on one session, as in a run (its lock session), so that its server
        # process's CPU time is the phase's.
        with connect(self.url, autocommit=True) as session:
            before = backend_cpu(session.backend_pid)
            scheduler = ReminderSchedulerService(OneSession(session), self.settings)  # type: ignore[arg-type]
            selection = scheduler.select_due(self.as_of)
            counts = ReminderDispatchService(self.db, self.settings).dispatch(
                self.as_of, self.run_id, transaction=session.transaction
            )
            self.last_cpu = cpu_since(session.backend_pid, before)
        return selection.due, counts.created, counts.already_existed

    def cli(self) -> dict[str, Any]:
        env = os.environ | {
            "REMINDERS_DATABASE_URL": self.url,
            "REMINDERS_BATCH_SIZE": str(self.settings.batch_size),
        }
        done = subprocess.run(
            [str(REMINDERS_BIN), "run", "--json", "--as-of", self.as_of.isoformat()],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"reminders run failed: {done.stderr[-2000:]}")
        summary = json.loads(done.stdout)
        # The largest child so far: the only children are these runs.
        summary["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return summary

    def count(self, table: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {table}"))


def timed(label: str, fn: Callable[[], Any]) -> tuple[Any, float]:
    print(f"  {label} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


PHASES = {
    "1": "1. baseline: one statement, minimal table",
    "1b": "1b. baseline again (every row conflicts)",
    "1c": "1c. the statement on schema 0004's table",
    "2": "2. select_due + dispatch (services)",
    "3": "3. services again (idempotent rerun)",
    "4": "4. `reminders run --json` (new process)",
}
RATIO_TO = {"1c": "1", "2": "1", "3": "1b", "4": "1"}


def one_round(bench: Bench, skip_cli: bool, skip_0004: bool) -> tuple[dict[str, float], int, Any]:
    t: dict[str, float] = {}
    cpu: dict[str, float | None] = {}
    bench.cpu_rounds.append(cpu)
    bench.fresh("bench_minimal")
    due, t["1"] = timed(PHASES["1"], lambda: bench.statement("bench_minimal"))
    cpu["1"] = bench.last_cpu
    again, t["1b"] = timed(PHASES["1b"], lambda: bench.statement("bench_minimal"))
    cpu["1b"] = bench.last_cpu
    assert again == 0, again
    bench.sql("TRUNCATE bench_minimal")
    if not skip_0004:
        bench.fresh("bench_schema_0004")
        n, t["1c"] = timed(PHASES["1c"], lambda: bench.statement("bench_schema_0004"))
        assert n == due, (n, due)
        bench.sql("TRUNCATE bench_schema_0004")
    bench.fresh("notifications")
    (selected, created, _), t["2"] = timed(PHASES["2"], bench.services)
    cpu["2"] = bench.last_cpu
    assert selected == due == created == bench.count("notifications"), (selected, due, created)
    bench.sql("CHECKPOINT")
    (_, created2, existed2), t["3"] = timed(PHASES["3"], bench.services)
    cpu["3"] = bench.last_cpu
    assert (created2, existed2) == (0, due), (created2, existed2)
    summary = None
    if not skip_cli:
        bench.fresh("notifications", with_run_row=False)
        summary, t["4"] = timed(PHASES["4"], bench.cli)
        assert summary["status"] == "success" and summary["created"] == due, summary
    return t, due, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignments", type=int, required=True)
    parser.add_argument("--due-fraction", type=float, default=0.6)
    parser.add_argument("--batch-size", type=int, help="default: REMINDERS_BATCH_SIZE or 50000")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is shown")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--skip-cli", action="store_true", help="skip phase 4")
    parser.add_argument("--skip-0004", action="store_true", help="skip phase 1c")
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
    with bench_database(keep=args.keep) as (url, where):
        facts = server_facts(url) | {"where": where}
        print(f"benchmark database {url!r} ({where}), as of {as_of}", file=sys.stderr)
        upgrade(url)
        bench = Bench(url, settings, as_of)
        _, seed_s = timed(
            f"seed {args.assignments:,} assignments",
            lambda: seed(
                bench.db,
                assignments=args.assignments,
                due_fraction=args.due_fraction,
                today=as_of,
                default_interval_days=settings.default_interval_days,
            ),
        )
        bench.sql(TABLES_SQL)
        bench.sql("VACUUM ANALYZE")
        active = bench.count("assignments WHERE status = 'active'")
        rounds, loads, summaries = [], [], []
        due = 0
        for round_no in range(1, args.repeat + 1):
            print(f" round {round_no} of {args.repeat}", file=sys.stderr)
            loads.append(load_average())
            t, due, summary = one_round(bench, args.skip_cli, args.skip_0004)
            loads.append(load_average())
            rounds.append(t)
            summaries.append(summary)
    result = {
        "assignments": args.assignments,
        "active": active,
        "due": due,
        "due_fraction": args.due_fraction,
        "batch_size": settings.batch_size,
        "seed_s": seed_s,
        "server": facts,
        "load_averages": loads,
        "rounds": rounds,
        "server_cpu_rounds": bench.cpu_rounds,
        "cli_peak_rss_mb": max((s or {}).get("peak_rss_mb", 0) for s in summaries) or None,
        "services_peak_rss_mb": rss_mb(),
        "cli_job_duration_s": [s and s.get("duration_s") for s in summaries],
    }
    report(result)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2, default=str))
    return 0


def report(r: dict[str, Any]) -> None:
    print()
    print(
        f"assignments {r['assignments']:,} ({r['active']:,} active, {r['due']:,} due), "
        f"batch size {r['batch_size']:,}; seed {r['seed_s']:.1f}s"
    )
    s = r["server"]
    print(f"PostgreSQL {s['version']} ({s['where']}); {json.dumps(s['settings'])}")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average (1/5/15 min)")
    print(
        "  before/after each round: " + "; ".join(" ".join(map(str, x)) for x in r["load_averages"])
    )
    print()
    print(f"{'phase':<46} {'median s':>9} {'ratio':>7}  rounds (s) | ratio per round")
    for key, name in PHASES.items():
        times = [t[key] for t in r["rounds"] if key in t]
        if not times:
            continue
        base = RATIO_TO.get(key)
        ratios = [t[key] / t[base] for t in r["rounds"] if key in t] if base else []
        ratio = f"{statistics.median(ratios):.2f}x" if ratios else ""
        print(
            f"{name:<46} {statistics.median(times):>9.3f} {ratio:>7}  "
            + " ".join(f"{x:.3f}" for x in times)
            + (" | " + " ".join(f"{x:.2f}" for x in ratios) if ratios else "")
        )
    cpu_rounds = [c for c in r["server_cpu_rounds"] if None not in c.values()]
    if cpu_rounds:
        # The server process's own CPU time: far less disturbed by other work than wall time.
        print("\nserver process CPU s (the phase's session, /proc/<pid>/stat):")
        for key, base in (("1", None), ("1b", None), ("2", "1"), ("3", "1b")):
            times = [c[key] for c in cpu_rounds]
            ratios = [c[key] / c[base] for c in cpu_rounds if c[base]] if base else []
            ratio = f"{statistics.median(ratios):.2f}x" if ratios else ""
            print(
                f"{PHASES[key]:<46} {statistics.median(times):>9.3f} {ratio:>7}  "
                + " ".join(f"{x:.3f}" for x in times)
                + (" | " + " ".join(f"{x:.2f}" for x in ratios) if ratios else "")
            )
    print()
    print("ratios: 1c, 2 and 4 against 1 of the same round; 3 against 1b of the same round")
    if r["cli_peak_rss_mb"]:
        print(f"peak RSS of the `reminders run` process: {r['cli_peak_rss_mb']:.1f} MiB")
    print(f"peak RSS of this process (seed, services): {r['services_peak_rss_mb']:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
