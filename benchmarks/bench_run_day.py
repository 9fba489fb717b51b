"""The day as one SQL call against the batched run, on the same data.

    REMINDERS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/bench_run_day.py --assignments 1000000

A fresh database `reminders_bench_<pid>` on REMINDERS_DATABASE_URL's server (or an
embedded PostgreSQL), N assignments seeded, VACUUM ANALYZE. Each round, from the same
state (notifications and the run log emptied, then a CHECKPOINT):

  batched        ReminderRun.execute: the session lock, one transaction per batch
  batched x2     the same again: the idempotent rerun (creates nothing)
  call           SELECT * FROM reminders_run_day(as_of): one transaction
  call x2        the same again

While the call runs, another session samples pg_stat_activity for it every 50 ms: how
long its transaction held an xid (and with it the xmin horizon vacuum cleans up to).
Not part of the test suite: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from typing import Any

import psycopg
from bench_common import bench_database, load_average, server_facts

from reminders_pipeline.core.services import build_reminder_run
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.migrate import upgrade
from reminders_pipeline.db.seed import seed
from reminders_pipeline.settings import ReminderSettings


def reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE notifications, reminder_runs RESTART IDENTITY CASCADE")
        conn.execute("UPDATE delivery_cursor SET last_notification_id = 0")
        conn.execute("CHECKPOINT")


def batched(url: str, settings: ReminderSettings, as_of: Any) -> tuple[float, int]:
    started = time.perf_counter()
    summary = build_reminder_run(url, settings).execute(as_of)
    assert summary.status == "success", summary
    return time.perf_counter() - started, summary.created


def call(url: str, settings: ReminderSettings, as_of: Any) -> tuple[float, int, float]:
    """Seconds, reminders created, seconds the call's transaction held an xid."""
    with psycopg.connect(url) as conn:
        pid = conn.info.backend_pid
        conn.execute(
            "SELECT set_config('reminders.timezone', %s, true),"
            " set_config('reminders.default_interval_days', %s, true),"
            " set_config('reminders.max_per_silence', %s, true)",
            (
                settings.timezone,
                str(settings.default_interval_days),
                str(settings.max_reminders_per_silence),
            ),
        )
        seen: list[float] = []
        done = threading.Event()

        def watch() -> None:
            with psycopg.connect(url, autocommit=True) as probe:
                while not done.is_set():
                    row = probe.execute(
                        "SELECT backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = %s",
                        (pid,),
                    ).fetchone()
                    if row and row[0]:
                        seen.append(time.perf_counter())
                    time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started = time.perf_counter()
        row = conn.execute("SELECT status, created FROM reminders_run_day(%s)", (as_of,)).fetchone()
        conn.commit()
        elapsed = time.perf_counter() - started
        done.set()
        watcher.join()
    assert row[0] == "success", row
    held = (seen[-1] - seen[0]) if len(seen) > 1 else 0.0
    return elapsed, row[1], held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", type=int, default=100_000)
    parser.add_argument("--due-fraction", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is shown")
    parser.add_argument("--json", dest="json_out", help="also write the figures to this file")
    args = parser.parse_args()
    settings = ReminderSettings.from_env()
    as_of = settings.today()
    rounds: list[dict[str, float]] = []
    with bench_database() as (url, where):
        facts = server_facts(url) | {"where": where}
        upgrade(url)
        started = time.perf_counter()
        seed(Database(url), assignments=args.assignments, due_fraction=args.due_fraction,
             today=as_of, default_interval_days=settings.default_interval_days)  # fmt: skip
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        print(f"seeded {args.assignments:,} in {time.perf_counter() - started:.1f}s",
              file=sys.stderr)  # fmt: skip
        for n in range(args.repeat):
            reset(url)
            b1, created_b = batched(url, settings, as_of)
            b2, _ = batched(url, settings, as_of)
            reset(url)
            c1, created_c, held = call(url, settings, as_of)
            c2, _, held2 = call(url, settings, as_of)
            assert created_b == created_c, (created_b, created_c)
            figures = {
                "batched_s": b1,
                "batched_rerun_s": b2,
                "call_s": c1,
                "call_rerun_s": c2,
                "call_xid_held_s": held,
                "created": created_c,
            }
            rounds.append(figures)
            print(f"round {n + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()),
                  file=sys.stderr)  # fmt: skip
    median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    out = {
        "assignments": args.assignments,
        "due_fraction": args.due_fraction,
        "batch_size": settings.batch_size,
        "rounds": rounds,
        "median": median,
        "load_average_after": load_average(),
        "server": facts,
    }
    print(json.dumps(out, indent=2, default=str))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=2, default=str)


if __name__ == "__main__":
    main()
