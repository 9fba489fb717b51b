"""The schema check's head revision, read from the migration files without Alembic."""

from __future__ import annotations

from pathlib import Path

import pytest

from reminders_pipeline.db import migrate, schema_version
from reminders_pipeline.errors import ConfigError


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    assert schema_version.head_revision() == migrate.head_revision()


def _revision(directory: Path, name: str, revision: str, down: str | None) -> None:
    down_text = "None" if down is None else f'"{down}"'
    (directory / f"{name}.py").write_text(
        f'"""{name}"""\n\nrevision = "{revision}"\ndown_revision = {down_text}\n'
    )


def _head_of(directory: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(schema_version, "VERSIONS_DIR", directory)
    schema_version.head_revision.cache_clear()
    try:
        return schema_version.head_revision()
    finally:
        schema_version.head_revision.cache_clear()


def test_the_head_is_the_revision_no_other_revises_not_the_last_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _revision(tmp_path, "0001_a", "0001", None)
    _revision(tmp_path, "0002_b", "0003", "0001")  # names need not sort like the chain
    _revision(tmp_path, "0003_c", "0002", "0003")
    assert _head_of(tmp_path, monkeypatch) == "0002"


def test_two_heads_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _revision(tmp_path, "0001_a", "0001", None)
    _revision(tmp_path, "0002_b", "0002", "0001")
    _revision(tmp_path, "0002_c", "0003", "0001")
    with pytest.raises(ConfigError, match="2 heads"):
        _head_of(tmp_path, monkeypatch)


def test_a_file_without_revision_lines_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _revision(tmp_path, "0001_a", "0001", None)
    (tmp_path / "0002_b.py").write_text('"""no revision here"""\n')
    with pytest.raises(ConfigError, match="0002_b.py"):
        _head_of(tmp_path, monkeypatch)
