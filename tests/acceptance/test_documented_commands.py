"""The documentation's commands, run as written.

Every shell block (```sh, ```bash, ```console) of README.md and docs/ is either run
here or skipped with the reason named in PLAN; a new block fails
`test_every_documented_block_is_run_or_skipped_with_a_reason` until it is given one.
The blocks run from the repository root (they say `.venv/bin/...`), with this test's
database as REMINDERS_DATABASE_URL and a fresh REMINDERS_HOME, and without
DAGSTER_HOME: a user's shell after `python3 dev.py ...`.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef

from reminders_pipeline.orchestration.definitions import defs
from reminders_pipeline.orchestration.sensors import all_sensors
from reminders_pipeline.settings import ReminderSettings
from tests.helpers.ports import free_port

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL = {"sh", "bash", "console"}
TIMEOUT_S = 240


@dataclass(frozen=True)
class Block:
    path: str
    line: int
    lang: str
    text: str

    @property
    def first(self) -> str:
        return self.text.splitlines()[0].strip()


def documented_blocks() -> list[Block]:
    blocks = []
    for doc in DOCS:
        text = doc.read_text()
        for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S):
            if m.group(1) in SHELL:
                line = text[: m.start()].count("\n") + 1
                blocks.append(Block(str(doc.relative_to(ROOT)), line, m.group(1), m.group(2)))
    return blocks


RUN = "run"
TINY_BENCH = "full-size benchmark (minutes); tests/integration/test_benchmark_smoke.py runs it tiny"
UI = "serves until stopped; tests/integration/test_ui_command.py starts `reminders ui`"
# (file, first line) -> RUN, or why the block is not run here.
PLAN: dict[tuple[str, str], str] = {
    (
        "README.md",
        "python3 dev.py demo     # run the job end to end: venv, install, "
        "embedded PostgreSQL, demo data, one run",
    ): RUN,
    (
        "README.md",
        "python3 dev.py ui       # = reminders ui: migrate, then dagster dev with "
        "the queue limit and run monitoring",
    ): UI,
    ("README.md", "$ .venv/bin/python -m aiosmtpd -n -l 127.0.0.1:8025 &"): RUN,
    (
        "README.md",
        "REMINDERS_SOAK_TRIALS=30 python3 dev.py test tests/acceptance/test_kill_soak.py -s",
    ): "the suite's own soak test, at 30 trials",
    (
        "docs/operations.md",
        "python3 dev.py ui            # = .venv/bin/reminders ui; UI on http://127.0.0.1:3000",
    ): UI,
    ("docs/operations.md", ".venv/bin/reminders backfill --from 2026-03-01 --to 2026-03-31"): RUN,
    (
        "docs/operations.md",
        ".venv/bin/reminders missing --since 2026-11-01          # e.g. 2026-11-03,2026-11-17",
    ): RUN,
    (
        "docs/operations.md",
        ".venv/bin/reminders db status     # schema revision, and: running? "
        "pid, port, socket, data folder, used by which pids",
    ): RUN,
    (
        "docs/operations.md",
        "pip install --require-hashes -r requirements.txt  "
        "# every dependency at its locked version",
    ): "a production host's setup (/srv, "
    "db.internal); tests/acceptance/test_installed_wheel.py installs the wheel without extras",
    ("docs/operations.md", "# once per release, before the new code server starts"): (
        "production services on other hosts; tests/acceptance/test_production_topology.py "
        "runs these commands against local servers"
    ),
    (
        "docs/operations.md",
        "pip install --require-hashes -r requirements-k8s.txt && pip install --no-deps .",
    ): "installs the k8s extra into the environment; "
    "tests/unit/test_lock.py checks requirements-k8s.txt is the lock's export",
    (
        "docs/operations.md",
        'psql "$SUPERUSER_URL_OF_THE_REMINDERS_DATABASE" -v ON_ERROR_STOP=1 \\',
    ): (
        "a superuser changes who may execute pg_catalog functions; "
        "tests/integration/test_advisory_lock_hardening.py applies the same file"
    ),
    ("docs/operations.md", "curl -X POST https://api.example.org/rpc/reminders_run_day \\"): (
        "needs a PostgREST server (not packaged for Debian) and its JWT; "
        "tests/integration/test_run_day_rpc.py makes PostgREST's statements for this request"
    ),
    (
        "docs/admin-api.md",
        ".venv/bin/reminders db upgrade                  # the schema at its head (serve checks)",
    ): RUN,
    (
        "docs/admin-api.md",
        "REMINDERS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\",
    ): TINY_BENCH,
    (
        "docs/benchmarks.md",
        "REMINDERS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\",
    ): TINY_BENCH,
    ("docs/benchmarks.md", ".venv/bin/pip install -e '.[bench]'      # matplotlib"): (
        "installs matplotlib into .venv; growth.py is a full-size benchmark"
    ),
}


def test_every_documented_block_is_run_or_skipped_with_a_reason() -> None:
    found = {(b.path, b.first) for b in documented_blocks()}
    assert found - PLAN.keys() == set(), "a new documented block: add it to PLAN"
    assert PLAN.keys() - found == set(), "PLAN names a block the docs no longer have"


def _params() -> list:
    params = []
    for block in documented_blocks():
        plan = PLAN.get((block.path, block.first), RUN)
        marks = [] if plan == RUN else [pytest.mark.skip(reason=plan)]
        params.append(pytest.param(block, id=f"{block.path}:{block.line}", marks=marks))
    return params


# ------------------------------------------------------------------ running


def _user_env(db_url: str | None, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "VIRTUAL_ENV")}
    env.pop("REMINDERS_DATABASE_URL", None)
    env["REMINDERS_HOME"] = str(home)
    if db_url:
        env["REMINDERS_DATABASE_URL"] = db_url
    return env


def _bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Background jobs of the block (the SMTP server) end with it.
    prologue = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    return subprocess.run(
        ["bash", "-c", prologue + script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def _ok(result: subprocess.CompletedProcess[str], block: Block) -> str:
    assert result.returncode == 0, (
        f"{block.path}:{block.line} exited {result.returncode}\n"
        f"stdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}"
    )
    return result.stdout


def _pattern(expected: str) -> str:
    """An expected output line, with what differs per run (ids, dates, times) left open."""
    out = re.escape(expected)
    out = re.sub(
        r"[0-9a-f]{8}\\-[0-9a-f]{4}\\-[0-9a-f]{4}\\-[0-9a-f]{4}\\-[0-9a-f]{12}",
        "[0-9a-f-]{36}",
        out,
    )
    out = re.sub(r"\d{4}\\-\d{2}\\-\d{2}", r"\\d{4}-\\d{2}-\\d{2}", out)
    return re.sub(r"\d+\\\.\d+s", r"\\d+\\.\\d+s", out)


def _transcript(block: Block) -> tuple[str, list[list[str]]]:
    """The commands of a console block as a script, and each command's expected lines."""
    script, expected = [], []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            command = [line[2:]]
            while command[-1].endswith("\\"):
                i += 1
                command.append(lines[i])
            script.append(f"printf '\\n@@ %d\\n' {len(expected)}\n" + "\n".join(command))
            expected.append([])
        elif line.strip():
            expected[-1].append(line)
        i += 1
    return "\n".join(script) + "\n", expected


def _instance(home: Path) -> DagsterInstance:
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster")))


def _check_backfill(home: Path, days: list[str]) -> None:
    with _instance(home) as instance:
        runs = instance.get_runs()
        assert sorted(r.tags["dagster/partition"] for r in runs) == days
        for run in runs:
            assert run.status == DagsterRunStatus.QUEUED
            assert run.tags["dagster/partition_set"] == "reminders_job_partition_set"
            assert run.tags["dagster/code_location"] == "reminders_pipeline"
            assert run.tags.get("dagster/backfill")


def _days(first: str, last: date) -> list[str]:
    start = date.fromisoformat(first)
    return [date.fromordinal(n).isoformat() for n in range(start.toordinal(), last.toordinal() + 1)]


@pytest.mark.parametrize("block", _params())
def test_documented_block_runs_as_written(block: Block, db_url: str, tmp_path: Path) -> None:
    home = tmp_path / "reminders_home"
    env = _user_env(db_url, home)
    first = block.first
    if first.startswith("python3 dev.py demo"):
        # The README block's other line, `python3 dev.py test`, is this suite itself.
        out = _ok(_bash(first.split("#")[0], env), block)
        assert re.search(r"^success: run .* reminders created", out, re.M), out
    elif block.lang == "console":
        port = str(free_port())
        script, expected = _transcript(block)
        out = _ok(_bash(script.replace("8025", port), env), block)
        segments = re.split(r"^@@ \d+$", out, flags=re.M)[1:]
        assert len(segments) == len(expected)
        for want, got in zip(expected, segments, strict=True):
            for line in want:
                assert re.search(_pattern(line), got), f"{line!r} not in {got!r}"
        assert "Subject: Reminder: get in touch with Person 1" in out  # the SMTP server got it
    elif "backfill --from 2026-03-01" in first:
        _ok(_bash(block.text, env), block)
        _check_backfill(home, _days("2026-03-01", date(2026, 3, 31)))
    elif "missing --since" in first:
        out = _ok(_bash(block.text, env), block)
        today = ReminderSettings.from_env().today()
        days = _days("2026-11-01", today)
        assert out.splitlines()[0] == ",".join(days)
        _check_backfill(home, days)
    elif "db status" in first:
        # The embedded server's commands: without REMINDERS_DATABASE_URL.
        out = _ok(_bash(block.text, _user_env(None, home)), block)
        assert "not running" in out
    elif block.path == "docs/admin-api.md":
        # `admin serve` runs until stopped: tests/acceptance/test_admin_server.py serves.
        runnable = [line for line in block.text.splitlines() if "admin serve" not in line]
        out = _ok(_bash("\n".join(runnable), env), block)
        assert re.search(r"\S{20,}", out), out  # the token, printed once
    else:
        pytest.fail(f"PLAN says run {block.path}:{block.line}, but no runner knows it")


# ------------------------------------------------------------------ counts in prose

NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}


def _number_before(word: str, text: str) -> list[int]:
    return [
        NUMBERS[m.lower()] for m in re.findall(rf"\b({'|'.join(NUMBERS)}) {word}\b", text, re.I)
    ]


def test_the_docs_count_the_sensors_schedules_and_benchmarks_there_are() -> None:
    sensors = len(all_sensors)
    schedules = len(list(defs.schedules or []))
    scripts = len([p for p in (ROOT / "benchmarks").glob("*.py") if p.name != "bench_common.py"])
    for doc in DOCS:
        text = doc.read_text().replace("\n", " ")
        name = doc.relative_to(ROOT)
        assert set(_number_before("sensors", text)) <= {sensors}, name
        assert set(_number_before("schedules", text)) <= {schedules}, name
        assert set(_number_before("scripts", text)) <= {scripts}, name
    assert "delivery_health_sensor" in (ROOT / "README.md").read_text()


def test_no_doc_cites_a_file_the_repository_lacks() -> None:
    for doc in DOCS:
        for cited in re.findall(r"\b([A-Z][A-Z_]+\.md)\b", doc.read_text()):
            assert list(ROOT.rglob(cited)), f"{doc.relative_to(ROOT)} cites {cited}"
