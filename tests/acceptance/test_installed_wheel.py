"""What users install: the built wheel, without extras, in a fresh venv outside the repo.

dev.py installs the project editable with the dev extra, which hides a runtime import
that only a dev package satisfies (httpx once was one). Here the sdist and the wheel
are built the way `python -m build` does (the wheel from the sdist, so package data
missing from the sdist is missing here too), the wheel is installed with only the
dependencies its metadata declares, held to the locked versions of requirements.txt,
and the installed program is run from a directory that is not the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.url import with_database
from tests.helpers.runs import expected_due_set, seed_assignments, today

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).with_name("uv"))
DEV_ONLY = {"pytest", "ruff", "hypothesis", "schemathesis", "aiosmtpd", "selenium", "uv"}


def _run(argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 180) -> str:
    result = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(argv)} exited {result.returncode}\n"
        f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-3000:]}"
    )
    return result.stdout


def _locked() -> dict[str, set[str]]:
    """name -> its pinned versions (one per Python-version fork of the universal lock)."""
    pins: dict[str, set[str]] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(" ")[0].split(";")[0].split("==")
            pins.setdefault(name.lower().replace("_", "-"), set()).add(version)
    return pins


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh venv holding the built wheel and its declared deps only."""
    work = tmp_path_factory.mktemp("wheel")
    tool_env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    _run(
        [UV, "build", "--quiet", "--out-dir", str(work / "dist"), str(ROOT)], env=tool_env, cwd=work
    )
    (wheel,) = (work / "dist").glob("reminders_pipeline-*.whl")
    venv = work / "venv"
    _run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], env=tool_env, cwd=work)
    python = str(venv / "bin" / "python")
    install = [UV, "pip", "install", "--quiet", "--python", python, str(wheel)]
    _run([*install, "--constraint", str(ROOT / "requirements.txt")], env=tool_env, cwd=work)
    return venv / "bin"


@pytest.fixture
def empty_db_url(pg_server_url: str) -> Iterator[str]:
    """A database with no schema at all, as a new deployment starts."""
    name = f"reminders_w_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_database(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _user_env(bin_dir: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A shell of a user who installed the wheel: its venv on PATH, nothing of the repo."""
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "REMINDERS_HOME": str(tmp_path / "reminders_home"),
        **extra,
    }


def test_the_wheel_installs_only_declared_dependencies_at_locked_versions(installed, tmp_path):
    freeze = _run(
        [UV, "pip", "freeze", "--python", str(installed / "python")],
        env=dict(os.environ),
        cwd=tmp_path,
    )
    lines = freeze.splitlines()
    project = [line for line in lines if line.startswith("reminders-pipeline @ file://")]
    assert len(project) == 1, freeze
    got = dict(line.split("==") for line in lines if "==" in line)
    got = {name.lower().replace("_", "-"): version for name, version in got.items()}
    assert DEV_ONLY.isdisjoint(got), sorted(DEV_ONLY & set(got))
    locked = _locked()
    assert {name: v for name, v in got.items() if v not in locked.get(name, ())} == {}


def test_installed_program_helps_loads_its_definitions_and_runs(installed, tmp_path, empty_db_url):
    db_url = empty_db_url
    env = _user_env(installed, tmp_path, REMINDERS_DATABASE_URL=db_url)
    where = _run(
        ["python", "-c", "import reminders_pipeline; print(reminders_pipeline.__file__)"],
        env=env,
        cwd=tmp_path,
    )
    assert where.startswith(str(installed.parent)), where

    assert "Usage: reminders" in _run(["reminders", "--help"], env=env, cwd=tmp_path)
    _run(
        [
            "dagster",
            "definitions",
            "validate",
            "-m",
            "reminders_pipeline.orchestration.definitions",
        ],
        env=env,
        cwd=tmp_path,
    )

    # The migrations ship in the wheel: `db upgrade` on an empty database builds the schema.
    _run(["reminders", "db", "upgrade"], env=env, cwd=tmp_path)
    db = Database(db_url)
    as_of = today()
    seed_assignments(db, 60, 0.5, as_of)
    due = len(expected_due_set(db, as_of))
    assert due > 0
    out = _run(["reminders", "run", "--json", "--as-of", as_of.isoformat()], env=env, cwd=tmp_path)
    result = json.loads(out)
    assert (result["status"], result["created"]) == ("success", due), result
