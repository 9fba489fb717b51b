"""The lock is the truth of what installs: it agrees with pyproject.toml, and the
requirements files dev.py, CI and production install from are its exports."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import dev

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).parent / "uv")
# Pinned together (pyproject.toml says why); the lock must hold these exact versions.
DAGSTER_FAMILY = {
    "dagster": "1.13.27",
    "dagster-webserver": "1.13.27",
    "dagster-postgres": "0.29.27",
}


def _lock_check(project: Path) -> subprocess.CompletedProcess[str]:
    # --offline: the check reads the files only; no index is needed to see a mismatch.
    return subprocess.run(
        [UV, "lock", "--check", "--offline", "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_uv_lock_agrees_with_pyproject() -> None:
    result = _lock_check(ROOT)
    assert result.returncode == 0, (
        f"uv.lock is stale against pyproject.toml: run `python3 dev.py lock`\n{result.stderr}"
    )


def test_the_check_fails_when_a_dependency_is_added_without_locking(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "uv.lock", "README.md", "setup.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text()
    marker = '    "httpx>=0.27",\n'
    assert marker in text
    pyproject.write_text(text.replace(marker, marker + '    "tabulate>=0.9",\n'))
    result = _lock_check(tmp_path)
    assert result.returncode != 0
    # Offline, uv re-resolves once the lock no longer satisfies pyproject.toml: with
    # every package in its cache it says the lock needs updating; on a machine whose
    # cache lacks one (a fresh CI machine) the re-resolution stops for want of the
    # index. Either way the check fails, where the unchanged files pass.
    assert "needs to be updated" in result.stderr or "network was disabled" in result.stderr


@pytest.mark.parametrize(("name", "extras"), dev.EXPORTS)
def test_requirements_files_are_the_lock_exported(name: str, extras: tuple[str, ...]) -> None:
    assert (ROOT / name).read_text() == dev.exported(UV, name, extras), (
        f"{name} differs from uv.lock's export: run `python3 dev.py lock`"
    )


def test_every_package_is_pinned_with_hashes() -> None:
    for name, _extras in dev.EXPORTS:
        requirements = [
            line
            for line in (ROOT / name).read_text().splitlines()
            if line and not line.startswith((" ", "#"))
        ]
        assert requirements
        unpinned = [line for line in requirements if "==" not in line or "\\" not in line]
        assert unpinned == [], f"{name}: not pinned with hashes: {unpinned}"


def test_the_dagster_family_is_locked_at_its_pins() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"] if p["name"] in DAGSTER_FAMILY}
    assert locked == DAGSTER_FAMILY
    runtime = (ROOT / "requirements.txt").read_text()
    for name, version in DAGSTER_FAMILY.items():
        assert f"\n{name}=={version} " in runtime
