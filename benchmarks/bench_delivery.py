"""Benchmark webhook (or email) delivery: the chosen concurrency against one-at-a-time
and against a minimal sender, same run.

    REMINDERS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/bench_delivery.py --deliveries 10000

A fresh database `reminders_bench_delivery_<pid>` on REMINDERS_DATABASE_URL's server
(dropped at the end) gets N mentors configured for the webhook channel, each with one
due assignment, and the daily dispatch creates their N reminders. A receiver in a
child process (ThreadingHTTPServer on a free loopback port; it checks the signature
and answers 200 after --latency-ms, standing for a real provider's response time)
takes the POSTs. Each round starts from the same state (deliveries emptied, the
expansion cursor back to 0) and times one Deliverer.drain(): expanding N reminders
into N deliveries, claiming, sending and recording them. The modes differ only in
REMINDERS_DELIVERY_CONCURRENCY: the chosen value (--concurrency, default the
setting's default) and 1. A third mode is the limit to compare against: a minimal
sender, the same WebhookSender (same HTTP client, signing and per-send deadline) and
concurrency posting the same N reminders to the same receiver from a thread pool, with
no database at all; the deliverer's rate as a share of it is printed. Rounds rotate the
modes' order; the median is shown with every round. `--channel email` does the same
for email against a local SMTP sink (aiosmtpd in the child process, accepting every
message after the latency; one connection per message, as the sender works). Not
part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

# A Standard Webhooks secret (whsec_ + base64 of 32 bytes); the receiver verifies with
# the official library, as a real one would.
SECRET = "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldC1iZW5jaA=="


def serve_smtp(port: int, latency_ms: float) -> None:
    """The SMTP sink (child process): accepts every message after the latency."""
    import asyncio
    import threading

    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
            await asyncio.sleep(latency_ms / 1000)
            return "250 queued"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    threading.Event().wait()  # until terminated


def serve(port: int, latency_ms: float) -> None:
    """The receiver (child process): checks each signature, answers 200 after the latency."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    webhook = Webhook(SECRET)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # no delayed-ACK stall between headers and body

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                webhook.verify(body, dict(self.headers.items()), json_parse=False)
                ok = True
            except WebhookVerificationError:
                ok = False
            time.sleep(latency_ms / 1000)
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # A class attribute: listen() runs in the constructor. The default backlog (5)
        # overflows when 16 connections open at the same instant (reset: ReadError).
        request_queue_size = 256
        daemon_threads = True

    server = Server(("127.0.0.1", port), Handler)
    server.serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 30.0) -> None:
    """Until the receiver (a child process still importing) accepts connections."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> int:
    from reminders_pipeline.settings.delivery import DELIVERY_CONCURRENCY

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=DELIVERY_CONCURRENCY.default)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--skip-one-at-a-time", action="store_true", help="only the deliverer and the limit"
    )
    parser.add_argument("--channel", choices=("webhook", "email"), default="webhook")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        (serve_smtp if args.channel == "email" else serve)(args.serve, args.latency_ms)
        return 0
    server_url = os.environ.get("REMINDERS_DATABASE_URL")
    if not server_url:
        sys.exit("set REMINDERS_DATABASE_URL to a PostgreSQL server (a database is created on it)")

    from reminders_pipeline.db.url import with_database

    name = f"reminders_bench_delivery_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    port = free_port()
    receiver = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            str(port),
            "--latency-ms",
            str(args.latency_ms),
            "--channel",
            args.channel,
        ]  # fmt: skip
    )
    try:
        return run(args, with_database(server_url, name), port)
    finally:
        receiver.terminate()
        receiver.wait(10)
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(args: argparse.Namespace, url: str, port: int) -> int:
    from datetime import date, timedelta

    from reminders_pipeline.core.dispatch import ReminderDispatchService
    from reminders_pipeline.db.connector import Database
    from reminders_pipeline.db.migrate import upgrade
    from reminders_pipeline.delivery.config import DeliveryConfig
    from reminders_pipeline.delivery.deliverer import Deliverer
    from reminders_pipeline.delivery.email import SmtpSender
    from reminders_pipeline.delivery.reminder import Sender
    from reminders_pipeline.delivery.webhook import WebhookSender
    from reminders_pipeline.settings import ReminderSettings

    upgrade(url)
    as_of = date.today()
    db = Database(url)
    with db.connection() as conn:
        conn.execute(
            """
            WITH m AS (
                INSERT INTO mentors (name, email, channels)
                SELECT 'Mentor ' || g, 'm' || g || '@example.org', ARRAY[%(channel)s]
                FROM generate_series(1, %(n)s) AS g RETURNING id
            )
            INSERT INTO assignments (mentor_id, mentee_name, started_on, last_contact_date)
            SELECT id, 'Person ' || id, %(last)s::date - 30, %(last)s FROM m
            """,
            {"n": args.deliveries, "last": as_of - timedelta(days=12), "channel": args.channel},
        )
    created = ReminderDispatchService(db, ReminderSettings()).dispatch(as_of, None).created
    url_hook = f"http://127.0.0.1:{port}/reminders"

    def make_sender(concurrency: int) -> Sender:
        if args.channel == "email":
            return SmtpSender("127.0.0.1", port, "reminders@example.org", security="none")
        return WebhookSender(url_hook, SECRET, concurrency=concurrency)

    wait_for_port(port)
    print(
        f"{created} reminders for {args.channel}; receiver latency {args.latency_ms:g} ms;"
        f" load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs",
        file=sys.stderr,
    )

    def drain(concurrency: int) -> float:
        with db.connection() as conn:
            conn.execute("TRUNCATE deliveries")
            conn.execute("UPDATE delivery_cursor SET last_notification_id = 0")
            conn.execute("CHECKPOINT")
        config = DeliveryConfig(concurrency=concurrency, batch_size=200, timeout_s=10.0)
        sender = make_sender(concurrency)
        deliverer = Deliverer(db, config, {args.channel: sender}, lambda: as_of)
        started = time.perf_counter()
        report = deliverer.drain()
        elapsed = time.perf_counter() - started
        deliverer.close()
        if report.totals()["sent"] != created:
            with db.connection() as conn:
                errors = conn.execute(
                    "SELECT last_error FROM deliveries WHERE state <> 'sent' LIMIT 3"
                ).fetchall()
            raise AssertionError(f"{report.totals()}: {errors}")
        return elapsed

    def minimal(concurrency: int) -> float:
        """The same sends with no database: the limit the deliverer is held to."""
        from concurrent.futures import ThreadPoolExecutor

        from reminders_pipeline.delivery.reminder import Reminder

        last = as_of - timedelta(days=12)
        reminders = [
            Reminder(n, n, args.channel, f"reminder-{n}-{args.channel}", "follow_up_reminder",
                     n, n, f"Mentor {n}", f"m{n}@example.org", f"Person {n}", "nb", last, 12,
                     as_of, last, 1)
            for n in range(1, created + 1)
        ]  # fmt: skip
        sender = make_sender(concurrency)
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            answers = list(pool.map(lambda r: sender.send(r, 10.0), reminders))
        elapsed = time.perf_counter() - started
        sender.close()
        assert all(a.startswith(("HTTP 200", "<reminder-")) for a in answers), answers[:3]
        return elapsed

    deliverer_mode = f"concurrency {args.concurrency}"
    minimal_mode = f"minimal sender, concurrency {args.concurrency}, no database"
    modes = {deliverer_mode: args.concurrency, "one at a time": 1, minimal_mode: 0}
    if args.skip_one_at_a_time:
        del modes["one at a time"]
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    loads: list[float] = []
    for round_no in range(args.repeat):
        turn = round_no % len(modes)
        order = list(modes)[turn:] + list(modes)[:turn]
        for mode in order:
            run_mode = minimal if mode == minimal_mode else drain
            times[mode].append(run_mode(modes[mode] or args.concurrency))
            loads.append(os.getloadavg()[0])
            print(f"round {round_no + 1} {mode}: {times[mode][-1]:.2f}s", file=sys.stderr)

    base = statistics.median(times.get("one at a time") or times[deliverer_mode])
    print(f"\n{created} {args.channel} deliveries, receiver latency {args.latency_ms:g} ms, "
          f"{args.repeat} rounds (median; every round in the last column)")  # fmt: skip
    print("| mode | median s | deliveries/s | vs one at a time | rounds s |")
    print("|---|---|---|---|---|")
    for mode in modes:
        median = statistics.median(times[mode])
        rounds = ", ".join(f"{t:.2f}" for t in times[mode])
        print(
            f"| {mode} | {median:.2f} | {created / median:,.0f} | {base / median:.1f}x | {rounds} |"
        )
    ratio = statistics.median(times[minimal_mode]) / statistics.median(times[deliverer_mode])
    print(f"\ndeliverer / minimal sender (rate, medians): {ratio:.2f}")
    print(f"load average (1 min) during the rounds: {min(loads):.2f} to {max(loads):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
