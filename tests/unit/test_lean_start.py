"""What `reminders run` imports before it works: only what the daily run needs.

The webhook sender's HTTP client (httpx, with its command-line extras) cost the
run's start about 0.2 s; only the delivery job and `reminders deliver` send
(tests/integration/test_delivery_dagster.py and test_delivery_cli.py run them).
"""

from __future__ import annotations

import ast
import subprocess
import sys


def _imported_after(statement: str, modules: tuple[str, ...]) -> list[str]:
    script = f"import sys\n{statement}\nprint(sorted(m for m in {modules!r} if m in sys.modules))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return ast.literal_eval(done.stdout.strip())


def test_the_cli_and_the_code_location_load_no_http_client_and_no_alembic() -> None:
    loaded = _imported_after(
        "import reminders_pipeline.cli, reminders_pipeline.orchestration.definitions",
        ("httpx", "alembic", "fastapi", "uvicorn"),
    )
    assert loaded == []


def test_the_entry_point_collects_the_young_generation_less_often() -> None:
    """Start-up's long-lived objects are not rescanned every 700 allocations (entry.py)."""
    script = (
        "import gc, sys\n"
        "sys.argv = ['reminders', '--help']\n"
        "from reminders_pipeline import entry\n"
        "try:\n    entry.main()\nexcept SystemExit:\n    pass\n"
        "print(gc.get_threshold(), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    young, *older = ast.literal_eval(done.stderr.strip().splitlines()[-1])
    assert young == 10_000 and older == [10, 10]
