"""The fixed cost of `reminders run`: a run with nothing to do against `import dagster`.

    REMINDERS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/bench_start.py --rounds 7

Seeds 10 assignments in a fresh database (`reminders_bench_<pid>`, dropped at the
end) and a fresh Dagster home, then times four commands as whole processes, in
turn within each round (the order rotates from round to round), each after one
untimed warm-up:

  A  python -c 'import dagster'                          the baseline
  E  a one-op job's execute_in_process()                 the cheapest Dagster run there
                                                         is: an op that does nothing,
                                                         on an ephemeral in-memory
                                                         instance, nothing persisted
  B  python -c 'import dagster; DagsterInstance.get()'   the floor: Dagster and the
                                                         persistent instance a run
                                                         must be recorded in
  C  reminders run --json                                the real run (lock, log,
                                                         select, dispatch, Dagster run)

Wall time and CPU time (user + system of the child, from the kernel's
accounting) per command; ratios B/A and C/A per round, and their medians. On a
shared machine CPU time moves less than wall time: both are printed.
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
import tempfile
import time
from pathlib import Path

from bench_common import bench_database, load_average

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.migrate import upgrade
from reminders_pipeline.db.seed import seed
from reminders_pipeline.settings import ReminderSettings

PYTHON = sys.executable
REMINDERS_BIN = str(Path(sys.executable).with_name("reminders"))
# Any Dagster run, even of nothing and recorded nowhere, imports Dagster's storage
# (SQLAlchemy, Alembic, the daemon modules): what no run of the job can go below.
EMPTIEST_RUN = (
    "import dagster\n"
    "@dagster.op\ndef noop() -> None: pass\n"
    "@dagster.job\ndef empty() -> None: noop()\n"
    "assert empty.execute_in_process().success\n"
)
COMMANDS = {
    "A": ("import dagster", [PYTHON, "-c", "import dagster"]),
    "E": ("a one-op job, in process, ephemeral", [PYTHON, "-c", EMPTIEST_RUN]),
    "B": (
        "import dagster; DagsterInstance.get()",
        [PYTHON, "-c", "import dagster; dagster.DagsterInstance.get().get_runs_count()"],
    ),
    "C": ("reminders run --json (nothing to do)", [REMINDERS_BIN, "run", "--json"]),
}


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, cpu s) of one run of command as a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    settings = ReminderSettings.from_env()
    with bench_database() as (url, where), tempfile.TemporaryDirectory() as home:
        upgrade(url)
        seed(
            Database(url),
            assignments=10,
            due_fraction=0.1,
            today=settings.today(),
            default_interval_days=settings.default_interval_days,
        )
        # The CLI makes its own Dagster home under REMINDERS_HOME (as for a user who
        # set no DAGSTER_HOME); the floor opens that same instance.
        cli_env = os.environ | {"REMINDERS_DATABASE_URL": url, "REMINDERS_HOME": home}
        cli_env.pop("DAGSTER_HOME", None)
        env = {"A": cli_env, "B": cli_env | {"DAGSTER_HOME": str(Path(home) / "dagster")}}
        env["C"] = env["E"] = cli_env
        for key in ("C", "A", "E", "B"):
            timed(COMMANDS[key][1], env[key])  # warm-up: page cache, the Dagster home
        rows: Rows = []
        loads = [load_average()]
        for round_no in range(args.rounds):
            keys = list(COMMANDS)
            keys = keys[round_no % len(keys) :] + keys[: round_no % len(keys)]
            rows.append({key: timed(COMMANDS[key][1], env[key]) for key in keys})
            loads.append(load_average())
            print(f" round {round_no + 1} of {args.rounds}", file=sys.stderr)
    report(rows, loads, where)
    return 0


Rows = list[dict[str, tuple[float, float]]]


def report(rows: Rows, loads: list[list[float]], where: str) -> None:
    print(f"\n{len(rows)} rounds, database on {where}; Python {sys.version.split()[0]}, ")
    print(f"{os.cpu_count()} CPUs; load average (1/5/15 min) before and after each round:")
    print("  " + "; ".join(" ".join(map(str, x)) for x in loads))
    print()
    print(f"{'command':<42} {'wall s':>7} {'cpu s':>7} {'wall ratio':>11} {'cpu ratio':>10}")
    summary = {}
    for key, (name, _) in COMMANDS.items():
        wall = statistics.median(r[key][0] for r in rows)
        cpu = statistics.median(r[key][1] for r in rows)
        wall_ratio = statistics.median(r[key][0] / r["A"][0] for r in rows)
        cpu_ratio = statistics.median(r[key][1] / r["A"][1] for r in rows)
        summary[key] = {"wall_s": wall, "cpu_s": cpu, "wall_ratio": wall_ratio}
        summary[key]["cpu_ratio"] = cpu_ratio
        print(f"{key} {name:<40} {wall:>7.3f} {cpu:>7.3f} {wall_ratio:>10.2f}x {cpu_ratio:>9.2f}x")
    print("\nratios: median of the per-round ratios against A of the same round")
    print("per round (cpu E/A):  " + " ".join(f"{r['E'][1] / r['A'][1]:.2f}" for r in rows))
    print("per round (cpu B/A):  " + " ".join(f"{r['B'][1] / r['A'][1]:.2f}" for r in rows))
    print("per round (wall C/A): " + " ".join(f"{r['C'][0] / r['A'][0]:.2f}" for r in rows))
    print("per round (cpu C/A):  " + " ".join(f"{r['C'][1] / r['A'][1]:.2f}" for r in rows))
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
