#!/usr/bin/env python3
"""Set up the project's virtualenv and run its commands; needs only Python 3.11+.

    python3 dev.py demo            # migrate, seed demo data, run the job once, show the log
    python3 dev.py ui [ARGS]       # the Dagster UI with the project's instance settings
    python3 dev.py test [ARGS]     # lint, then the whole test suite (ARGS go to pytest)
    python3 dev.py lint            # ruff check + ruff format --check
    python3 dev.py reminders ARGS  # the `reminders` command
    python3 dev.py dagster ARGS    # the `dagster` command (e.g. `dev`)

The virtualenv is .venv beside this file; it is (re)installed whenever
pyproject.toml or setup.py change.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"
EXTRAS = "dev"


def _say(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr, flush=True)


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "setup.py"):
        digest.update((ROOT / name).read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py may run on an older python3)
        sys.exit(f"dev.py: Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        _say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    want = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    _say("installing the project and its dependencies (first run takes a few minutes)")
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[{EXTRAS}]"], check=True, cwd=ROOT)
    STAMP.write_text(want)


def _run(*args: str) -> int:
    return subprocess.run(list(args), cwd=ROOT).returncode


def lint() -> int:
    return (
        _run(str(BIN / "ruff"), "check", ".")
        or _run(str(BIN / "ruff"), "format", "--check", ".")
        or _run(str(BIN / "lint-imports"))
    )


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in ("demo", "ui", "test", "lint", "reminders", "dagster"):
        print(f"dev.py: unknown command {command!r}\n{__doc__}", file=sys.stderr)
        return 2
    ensure_venv()
    if command == "ui" and os.name == "posix":
        # Become `reminders ui`: Ctrl-C must reach it and dagster dev alone, so they
        # shut down in order (subprocess.run would SIGKILL it a moment later).
        os.chdir(ROOT)
        os.execv(BIN / "reminders", [str(BIN / "reminders"), "ui", *rest])
    if command in ("demo", "ui"):
        return _run(str(BIN / "reminders"), command, *rest)
    if command == "lint":
        return lint()
    if command == "test":
        code = lint()
        if code:
            _say("lint failed; fix it (`.venv/bin/ruff format .`) before the tests run")
            return code
        return _run(str(BIN / "python"), "-m", "pytest", *rest)
    return _run(str(BIN / command), *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
