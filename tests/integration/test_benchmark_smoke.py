"""The benchmark scripts still run (tiny sizes; the figures are not checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(pg_server_url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=BENCH,
        env=os.environ | {"REMINDERS_DATABASE_URL": pg_server_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_bench_run_and_bench_year_run_at_a_tiny_size(pg_server_url):
    out = _run(
        pg_server_url, "bench_run.py", "--assignments", "2000", "--repeat", "1", "--skip-cli"
    )
    assert "2. select_due + dispatch (services)" in out
    assert "1c. the statement on schema 0004's table" in out
    out = _run(pg_server_url, "bench_year.py", "--assignments", "500", "--days", "3")
    assert "last day" in out and "dispatch_due_batch" in out


def test_bench_delivery_and_bench_admin_api_run_at_a_tiny_size(pg_server_url):
    out = _run(pg_server_url, "bench_delivery.py", "--deliveries", "40", "--repeat", "1")
    assert "one at a time" in out
    out = _run(
        pg_server_url,
        "bench_admin_api.py",
        "--concurrency", "2", "--requests", "20", "--rounds", "1", "--assignments", "50",
    )  # fmt: skip
    assert "p95" in out


def test_bench_start_runs_one_round(pg_server_url):
    out = _run(pg_server_url, "bench_start.py", "--rounds", "1")
    assert "C reminders run --json (nothing to do)" in out and "cpu ratio" in out
