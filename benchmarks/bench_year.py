"""A year of daily runs: does the last day cost what the first did?

    REMINDERS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/bench_year.py --assignments 100000 --days 365

Seeds N assignments on the first day, then for each day: registers that day's
contacts (one set-based INSERT into activities: every active assignment has its
own contact rate, from every few days to never, so reminders repeat, silences
end and some reach the cap), then runs select_due + dispatch for the day (timed,
with a reminder_runs row as a run has). On the first and the last day, before
the timed run, the plans of the due count and of the first dispatch batch are
taken with EXPLAIN (ANALYZE, BUFFERS) inside a transaction that is rolled back
(the same on both days, so both timed runs follow the same warm-up). At the end:
the table's size, then `reminders prune --older-than` (--prune-days) and its time.
Every --vacuum-days days (default 1) assignments and notifications are vacuumed, untimed, as
autovacuum does on a default server; --vacuum-days 0 shows a server without it.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from bench_common import bench_database, load_average, server_facts

from reminders_pipeline.core.dispatch import FOLLOW_UP_REMINDER, ReminderDispatchService
from reminders_pipeline.core.due import ReminderSchedulerService
from reminders_pipeline.core.prune import prune_cutoff, prune_reminders
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.migrate import upgrade
from reminders_pipeline.db.queries import query
from reminders_pipeline.db.seed import seed
from reminders_pipeline.delivery.config import DeliveryConfig
from reminders_pipeline.delivery.deliverer import Deliverer
from reminders_pipeline.settings import ReminderSettings

# Contact rate per day by id % 5: every ~3 days, ~8, ~15, ~40, never.
CONTACTS_SQL = """
INSERT INTO activities (assignment_id, kind, occurred_on, registered_via, registered_by)
SELECT id, 'contact', %(day)s, 'bulk', 'bench'
FROM assignments
WHERE status = 'active'
  AND random() < (ARRAY[0.33, 0.125, 0.067, 0.025, 0.0])[id %% 5 + 1]
"""


def explain(url: str, settings: ReminderSettings, as_of: Any) -> dict[str, str]:
    params = {
        "as_of": as_of,
        "default_interval": settings.default_interval_days,
        "max_per_silence": settings.max_reminders_per_silence,
        "after_id": 0,
        "batch_size": settings.batch_size,
        "kind": FOLLOW_UP_REMINDER,
        "channel": "in_app",
        "state": "delivered",
        "run_id": None,
    }
    plans = {}
    with psycopg.connect(url) as conn:
        for name in ("count_due_assignments", "dispatch_due_batch"):
            rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query(name), params).fetchall()
            plans[name] = "\n".join(r[0] for r in rows)
        conn.rollback()
    return plans


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignments", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--prune-days", type=int, default=90)
    parser.add_argument(
        "--vacuum-days",
        type=int,
        default=1,
        help="VACUUM (ANALYZE) assignments and notifications every N days, untimed, "
        "as autovacuum would "
        "(0: never; for a server running with autovacuum = off)",
    )
    parser.add_argument("--json", dest="json_out")
    args = parser.parse_args()
    settings = ReminderSettings()
    last_day = settings.today()
    first_day = last_day - timedelta(days=args.days - 1)
    days: list[dict[str, Any]] = []
    with bench_database() as (url, where):
        facts = server_facts(url) | {"where": where}
        upgrade(url)
        db = Database(url)
        seed(
            db,
            assignments=args.assignments,
            due_fraction=0.2,
            today=first_day,
            default_interval_days=settings.default_interval_days,
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        plans = {}
        for n in range(args.days):
            day = first_day + timedelta(days=n)
            with psycopg.connect(url, autocommit=True) as conn:
                started = time.perf_counter()
                contacts = conn.execute(CONTACTS_SQL, {"day": day}).rowcount
                contacts_s = time.perf_counter() - started
                run_id = conn.execute(
                    "INSERT INTO reminder_runs (status, as_of, trigger)"
                    " VALUES ('running', %s, 'benchmark') RETURNING id",
                    (day,),
                ).fetchone()[0]
            if n in (0, args.days - 1):
                plans["first" if n == 0 else "last"] = explain(url, settings, day)
            started = time.perf_counter()
            ReminderSchedulerService(db, settings).select_due(day)
            counts = ReminderDispatchService(db, settings).dispatch(day, run_id)
            run_s = time.perf_counter() - started
            with psycopg.connect(url, autocommit=True) as conn:
                # The simulated day is the reminders' creation day (untimed), so
                # prune's created_at cutoff means what it means in production.
                conn.execute(
                    "UPDATE notifications SET created_at = %s::date + time '06:00'"
                    " WHERE run_id = %s",
                    (day, run_id),
                )
                conn.execute(
                    "UPDATE reminder_runs SET status = 'success', finished_at = now()"
                    " WHERE id = %s",
                    (run_id,),
                )
            days.append(
                {
                    "day": str(day),
                    "contacts": contacts,
                    "contacts_s": contacts_s,
                    "created": counts.created,
                    "run_s": run_s,
                    "load": load_average(),
                }
            )
            if args.vacuum_days and (n + 1) % args.vacuum_days == 0:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("VACUUM (ANALYZE) assignments, notifications")
            if n % 30 == 0 or n == args.days - 1:
                print(
                    f"day {n + 1}: {counts.created} reminders in {run_s:.3f}s, "
                    f"{contacts} contacts, load {load_average()}",
                    file=sys.stderr,
                )
        with psycopg.connect(url, autocommit=True) as conn:
            size = conn.execute(
                "SELECT count(*), pg_size_pretty(pg_table_size('notifications')),"
                " pg_size_pretty(pg_indexes_size('notifications')) FROM notifications"
            ).fetchone()
        # Untimed: what the deliverer after each run does in production (in-app only
        # here: it moves its cursor). Prune keeps every reminder past that cursor.
        Deliverer(db, DeliveryConfig(), {}, lambda: last_day).expand()
        started = time.perf_counter()
        before = prune_cutoff(last_day, args.prune_days, settings.timezone)
        pruned = prune_reminders(db, before)
        prune_s = time.perf_counter() - started
    first, last = days[0], days[-1]
    week1 = statistics.median(d["run_s"] for d in days[:7])
    week52 = statistics.median(d["run_s"] for d in days[-7:])
    print()
    print(
        f"{args.assignments:,} assignments, {args.days} daily runs, {where}, PostgreSQL "
        f"{facts['version']}"
    )
    print(f"first day {first['day']}: {first['run_s']:.3f}s ({first['created']} reminders)")
    print(
        f"last day  {last['day']}: {last['run_s']:.3f}s ({last['created']} reminders); "
        f"ratio {last['run_s'] / first['run_s']:.2f}"
    )
    print(
        f"median of the first 7 days {week1:.3f}s, of the last 7 days {week52:.3f}s; "
        f"ratio {week52 / week1:.2f}"
    )
    print(f"notifications at the end: {size[0]:,} rows, table {size[1]}, indexes {size[2]}")
    print(f"contacts registered: {sum(d['contacts'] for d in days):,}")
    print(f"prune --older-than {args.prune_days}: {pruned:,} deleted in {prune_s:.2f}s")
    print(f"load average first day {first['load']}, last day {last['load']}")
    for which, p in plans.items():
        for name, text in p.items():
            print(f"\n-- {which} day, {name}\n{text}")
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {
                    "days": days,
                    "plans": plans,
                    "size": list(size),
                    "pruned": pruned,
                    "prune_s": prune_s,
                    "server": facts,
                },
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
