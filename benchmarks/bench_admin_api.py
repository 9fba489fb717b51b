"""Load the admin API as operators run it: `reminders admin serve` on loopback (Granian).

    REMINDERS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/bench_admin_api.py --concurrency 20 150

A fresh database `reminders_bench_admin_<pid>` is created on the server, migrated,
seeded with --assignments assignments (db.seed), given one read+correct token, and
dropped at the end. The server runs as a child process with the environment's
REMINDERS_ADMIN_* settings (pool of 10 by default). For each concurrency C, that
many clients (asyncio + httpx, one keep-alive connection each) send --requests
requests per round, --rounds rounds:

  baseline   GET /healthz: no token, one `SELECT 1` on the health connection: the
             floor of HTTP + the server + one database round trip on this machine
  reads      GET /assignments/{random id}: token check, the assignment, its history
  mixed      9 reads to 1 PUT correction of a random assignment (row locks, audit)

Each line shows the median round's p50/p95/p99 latency, throughput, the errors
(any status other than 200, and transport errors, by kind) and every round's p95;
ratios are to the baseline's p50 at the same concurrency. The peak number of
server connections the API held is sampled from pg_stat_activity.
Not part of the test suite: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg

from reminders_pipeline.admin.tokens import TokenStore
from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.migrate import upgrade
from reminders_pipeline.db.seed import seed
from reminders_pipeline.db.url import with_database
from reminders_pipeline.settings import ReminderSettings

REMINDERS = Path(sys.executable).with_name("reminders")


@dataclass
class Round:
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def one_round(
    base: str, token: str, kind: str, concurrency: int, requests: int, ids: list[int]
) -> Round:
    result = Round()
    today = ReminderSettings.from_env().today()
    left = iter(range(requests))
    headers = {"Authorization": f"Bearer {token}"}

    async def client() -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
            for n in left:
                started = time.perf_counter()
                try:
                    if kind == "baseline":
                        r = await http.get("/healthz")
                    elif kind == "reads" or n % 10:
                        r = await http.get(f"/assignments/{random.choice(ids)}", headers=headers)
                    else:
                        day = today - timedelta(days=random.randint(0, 5))
                        r = await http.put(
                            f"/assignments/{random.choice(ids)}/last-contact-date",
                            json={"last_contact_date": day.isoformat(), "reason": "benchmark"},
                            headers=headers,
                        )
                    # A correction before the start date is a 422 by design: not an error.
                    if r.status_code != 200 and not (r.status_code == 422 and kind == "mixed"):
                        result.errors[str(r.status_code)] += 1
                except httpx.HTTPError as exc:
                    result.errors[type(exc).__name__] += 1
                result.latencies_ms.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_connections(url: str, stop: threading.Event, peak: list[int]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.wait(0.05):
            n = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name LIKE 'reminders-admin%'"
            ).fetchone()[0]
            peak[0] = max(peak[0], n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[20, 150])
    parser.add_argument("--requests", type=int, default=3000, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--assignments", type=int, default=10_000)
    args = parser.parse_args()

    server_url = os.environ.get("REMINDERS_DATABASE_URL")
    if not server_url:
        sys.exit("set REMINDERS_DATABASE_URL to a PostgreSQL server (a database is made on it)")
    name = f"reminders_bench_admin_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    child = None
    try:
        upgrade(url)
        db = Database(url)
        today = ReminderSettings.from_env().today()
        seed(
            db,
            assignments=args.assignments,
            due_fraction=0.2,
            today=today,
            default_interval_days=10,
        )
        # Active ones only: a closed assignment's correction is a 409 by design.
        with psycopg.connect(url) as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM assignments WHERE status = 'active'"
                ).fetchall()
            ]
        token = TokenStore(db).create("bench", ["read", "correct"])
        port = free_port()
        log = open(f"/tmp/bench_admin_api_{os.getpid()}.log", "w")  # noqa: SIM115
        env = {**os.environ, "REMINDERS_DATABASE_URL": url}
        child = subprocess.Popen(
            [str(REMINDERS), "admin", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,  # the access log: a line per request
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        print(
            f"admin API on {base}, {args.assignments} assignments, {args.requests} requests "
            f"per round, {args.rounds} rounds, median round shown; pool "
            f"{os.environ.get('REMINDERS_ADMIN_POOL_MAX', '10')}"
        )
        print(
            f"{'C':>4} {'workload':<9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>7} "
            f"{'x base p50':>10} {'errors':<22} {'conns':>5}  p95 of each round"
        )
        for concurrency in args.concurrency:
            base_p50 = None
            for kind in ("baseline", "reads", "mixed"):
                stop, peak = threading.Event(), [0]
                sampler = threading.Thread(target=peak_connections, args=(url, stop, peak))
                sampler.start()
                rounds = [
                    asyncio.run(one_round(base, token, kind, concurrency, args.requests, ids))
                    for _ in range(args.rounds)
                ]
                stop.set()
                sampler.join()
                median = sorted(rounds, key=lambda r: r.pct(50))[len(rounds) // 2]
                base_p50 = base_p50 or median.pct(50)
                errors: Counter[str] = Counter()
                for r in rounds:
                    errors.update(r.errors)
                shown = ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "none"
                total = args.requests * args.rounds
                print(
                    f"{concurrency:>4} {kind:<9} {median.pct(50):>8.1f} {median.pct(95):>8.1f} "
                    f"{median.pct(99):>8.1f} {args.requests / median.seconds:>7.0f} "
                    f"{median.pct(50) / base_p50:>10.2f} {shown + f' /{total}':<22} "
                    f"{peak[0]:>5}  " + " ".join(f"{r.pct(95):.0f}" for r in rounds)
                )
    finally:
        if child is not None:
            child.terminate()
            child.wait(10)
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
