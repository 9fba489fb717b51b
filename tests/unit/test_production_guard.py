"""The embedded database is a development default: production processes refuse it."""

from __future__ import annotations

from pathlib import Path

import pytest

from reminders_pipeline.db import embedded as embedded_module
from reminders_pipeline.db.embedded import ensure_database_url
from reminders_pipeline.db.url import production_reason
from reminders_pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_embedded(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record embedded-server starts instead of starting one."""
    started: list[Path] = []

    def fake_start(pgdata: Path) -> str:
        started.append(pgdata)
        return "postgresql://postgres@/postgres?host=/tmp/fake"

    monkeypatch.setattr(embedded_module, "start_embedded", fake_start)
    monkeypatch.delenv("REMINDERS_DATABASE_URL", raising=False)
    monkeypatch.delenv("REMINDERS_ENV", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return started


def home_with(tmp_path: Path, instance_file: str) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / instance_file).read_text())
    return home


def test_a_postgres_storage_instance_without_the_url_refuses_the_embedded_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_embedded: list[Path]
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(home_with(tmp_path, "dagster.postgres.yaml")))
    with pytest.raises(ConfigError, match="REMINDERS_DATABASE_URL is not set") as refused:
        ensure_database_url()
    assert "keeps its storage in PostgreSQL" in str(refused.value)
    assert no_embedded == []


def test_reminders_env_production_refuses_the_embedded_server(
    monkeypatch: pytest.MonkeyPatch, no_embedded: list[Path]
) -> None:
    monkeypatch.setenv("REMINDERS_ENV", "Production")
    with pytest.raises(ConfigError, match="REMINDERS_DATABASE_URL .*REMINDERS_ENV=production"):
        ensure_database_url()
    assert no_embedded == []


def test_the_quick_start_instance_and_no_instance_keep_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_embedded: list[Path]
) -> None:
    assert production_reason() is None
    ensure_database_url()
    monkeypatch.setenv("DAGSTER_HOME", str(home_with(tmp_path, "dagster.yaml")))
    assert production_reason() is None
    ensure_database_url()
    assert len(no_embedded) == 2


def test_a_set_url_is_used_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_embedded: list[Path]
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(home_with(tmp_path, "dagster.postgres.yaml")))
    monkeypatch.setenv("REMINDERS_DATABASE_URL", "postgresql://u@db.internal:5432/reminders")
    assert ensure_database_url() == "postgresql://u@db.internal:5432/reminders"
    assert no_embedded == []
