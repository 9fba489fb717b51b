"""The Dagster home the CLI runs in: its shipped dagster.yaml and its instance.

Processes sharing one DAGSTER_HOME (a `reminders run` beside `reminders ui`, say)
create it under a file lock.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no cross-process guard, first use must not race
    fcntl = None  # type: ignore[assignment]

from dagster import DagsterInstance

from reminders_pipeline import settings

# The first line of a dagster.yaml this package manages (instance/dagster.yaml).
MANAGED_MARKER = "# managed by reminders_pipeline"
# What earlier versions wrote into the CLI's home: telemetry only, no run queue.
LEGACY_CONFIG = "telemetry:\n  enabled: false\n"


def shipped_instance_yaml() -> str:
    """The instance settings shipped with the package (queue limit, run monitoring)."""
    return resources.files("reminders_pipeline.instance").joinpath("dagster.yaml").read_text()


def prepare_dagster_home(home: Path) -> str:
    """Make home/dagster.yaml carry the shipped instance settings; says what it did.

    Written when absent, refreshed while it is ours (the marker line, or the
    telemetry-only file earlier versions wrote); an operator's own file is kept.
    """
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    shipped = shipped_instance_yaml()
    with _first_use_guard(home):
        current = config.read_text() if config.exists() else None
        if current == shipped:
            return f"{config}: the shipped instance settings"
        if current is not None and not (
            current.startswith(MANAGED_MARKER) or current == LEGACY_CONFIG
        ):
            return f"{config}: kept as is (not written by reminders_pipeline)"
        partial = config.with_name(f".dagster.yaml.{os.getpid()}")
        partial.write_text(shipped)
        partial.replace(config)  # atomic: a starting process never reads half a file
        return f"{config}: {'written' if current is None else 'refreshed'} from the package"


def default_dagster_home() -> Path:
    """DAGSTER_HOME, or the persistent local home under REMINDERS_HOME."""
    return Path(settings.dagster_home() or settings.embedded_home() / "dagster").resolve()


def dagster_instance() -> DagsterInstance:
    """DAGSTER_HOME's instance; without it, a persistent local one under REMINDERS_HOME
    with the shipped instance settings (the same the UI runs with: `reminders ui`)."""
    if not settings.dagster_home():
        home = default_dagster_home()
        prepare_dagster_home(home)
        settings.use_dagster_home(home)
    with _first_use_guard(Path(settings.dagster_home() or ".")):
        instance = DagsterInstance.get()
        # Touch each storage under the guard: SQLite storage creates its schema on
        # first use, and two processes doing that at once fail ("table runs already
        # exists"), which would leave an invocation without any record.
        instance.get_runs_count()
        _ = instance.event_log_storage, instance.schedule_storage
    return instance


@contextmanager
def _first_use_guard(home: Path) -> Iterator[None]:
    """Serialise instance creation across processes sharing one DAGSTER_HOME."""
    if fcntl is None or not home.is_dir():
        yield
        return
    with open(home / ".reminders-instance.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
