"""The instance settings `reminders ui` and the CLI give their Dagster home.

The shipped settings are package data (an installed package has no repo root):
the same as the repository's dagster.yaml, written into the home when absent,
refreshed while the file is ours, and left alone when the operator wrote it.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest
import yaml

from reminders_pipeline.orchestration.dagster_home import (
    LEGACY_CONFIG,
    MANAGED_MARKER,
    dagster_instance,
    prepare_dagster_home,
    shipped_instance_yaml,
)

REPO = Path(__file__).resolve().parents[2]


def test_the_package_ships_the_repositorys_instance_settings() -> None:
    shipped = shipped_instance_yaml()
    assert shipped.startswith(MANAGED_MARKER)
    assert yaml.safe_load(shipped) == yaml.safe_load((REPO / "dagster.yaml").read_text())
    settings = yaml.safe_load(shipped)
    assert settings["concurrency"]["runs"]["tag_concurrency_limits"] == [
        {"key": "reminders/singleton", "limit": 1}
    ]
    assert settings["run_monitoring"]["enabled"] is True
    # ...and the file is in the distribution, not only in this checkout.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["reminders_pipeline"]
    assert any(fnmatch.fnmatch("instance/dagster.yaml", g) for g in globs)


@pytest.mark.parametrize(
    ("before", "after", "said"),
    [
        (None, "shipped", "written from the package"),
        (LEGACY_CONFIG, "shipped", "refreshed from the package"),
        (
            f"{MANAGED_MARKER}: an older version\ntelemetry:\n  enabled: false\n",
            "shipped",
            "refreshed",
        ),
        ("# mine\ntelemetry:\n  enabled: true\n", "kept", "kept as is"),
    ],
)
def test_prepare_dagster_home(tmp_path: Path, before: str | None, after: str, said: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    if before is not None:
        (home / "dagster.yaml").write_text(before)
    message = prepare_dagster_home(home)
    assert said in message
    content = (home / "dagster.yaml").read_text()
    assert content == (shipped_instance_yaml() if after == "shipped" else before)
    again = prepare_dagster_home(home)  # a second call changes nothing
    assert ("the shipped instance settings" if after == "shipped" else "kept as is") in again
    assert (home / "dagster.yaml").read_text() == content


def test_the_clis_own_dagster_home_has_the_run_queue_and_run_monitoring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("REMINDERS_HOME", str(tmp_path / "reminders"))
    home = tmp_path / "reminders" / "dagster"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(LEGACY_CONFIG)  # what earlier versions wrote
    with dagster_instance() as instance:
        assert instance.run_monitoring_enabled
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert limits == [{"key": "reminders/singleton", "limit": 1}]
    assert (home / "dagster.yaml").read_text() == shipped_instance_yaml()
