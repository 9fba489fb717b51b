"""0008 repairs the edits made to landed migrations: a database that ran them as they
first landed ends with the same schema as one migrated today."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from reminders_pipeline.db import migrate
from reminders_pipeline.db.migrate import head_revision, upgrade
from tests.helpers.catalog import catalog, differences

# The texts as they first landed on main (git show 938678e, 75be170, 75be170, 75be170),
# each later edited in place.
AS_LANDED = Path(__file__).with_name("data") / "migrations_as_landed"


def _migrations_as_landed(tmp_path: Path) -> Path:
    copy = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, copy)
    for old in AS_LANDED.glob("*.sql"):
        assert (copy / "versions" / old.name).exists(), old.name
        shutil.copy(old, copy / "versions" / old.name)
    return copy


def test_a_database_migrated_with_the_texts_as_landed_is_repaired(
    empty_url: str, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = catalog(db_url)
    assert fresh["version"] == [(head_revision(),)]
    with monkeypatch.context() as patch:
        patch.setattr(migrate, "MIGRATIONS_DIR", _migrations_as_landed(tmp_path))
        upgrade(empty_url, "0007")
    drift = differences(catalog(empty_url), fresh)
    # What the edits changed, missing from the old database (and so what 0008 must repair).
    assert {"functions", "indexes", "relations", "columns"} <= drift.keys(), drift
    assert any("reminders_sent_since" in row for row in drift["functions"]["only_right"])
    assert any("reminder_due" in row for row in drift["functions"]["only_left"])

    assert upgrade(empty_url) == ("0007", head_revision())
    assert differences(catalog(empty_url), fresh) == {}


def test_only_the_seven_argument_due_rule_is_left(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        forms = conn.execute(
            "SELECT proname, pronargs FROM pg_proc "
            "WHERE proname IN ('reminder_due', 'next_reminder_due_on') ORDER BY 1"
        ).fetchall()
    assert forms == [("next_reminder_due_on", 7), ("reminder_due", 7)]
