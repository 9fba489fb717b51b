"""A landed migration is never edited: its files are pinned by hash.

A database already past a migration never runs it again, so an edit to a landed
migration reaches fresh databases only and the two drift apart (0002, 0005, 0006
and 0007 were edited after landing; 0008 repairs them). Change the schema with a
new migration instead. A new migration adds its two lines to
reminders_pipeline/db/migrations/landed.sha256 in the commit that lands it
(`cd reminders_pipeline/db/migrations && sha256sum versions/NNNN_* >> landed.sha256`);
from then on they hold it (docs/decisions/layout.md, "Migrations").
"""

from __future__ import annotations

import hashlib
from pathlib import Path

VERSIONS = Path(__file__).resolve().parents[2] / "reminders_pipeline/db/migrations/versions"

PINS = VERSIONS.parent / "landed.sha256"


def _landed() -> dict[str, str]:
    """name -> sha256 from landed.sha256 (`sha256sum` format, so `sha256sum -c` reads it)."""
    pins = {}
    for line in PINS.read_text().splitlines():
        digest, path = line.split(maxsplit=1)
        pins[Path(path).name] = digest
    return pins


def _migration_files() -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(VERSIONS.iterdir())
        if path.suffix in (".py", ".sql")
    }


def test_landed_migrations_are_unchanged() -> None:
    now = _migration_files()
    edited = sorted(name for name, digest in _landed().items() if now.get(name) != digest)
    assert edited == [], (
        f"landed migrations changed or removed: {edited}; a landed migration is never "
        "edited (databases past it never see the edit): write a new migration instead"
    )


def test_every_migration_is_pinned() -> None:
    unpinned = sorted(set(_migration_files()) - set(_landed()))
    assert unpinned == [], (
        f"migrations without a pinned hash: {unpinned}; add their sha256 to landed.sha256 "
        "in the commit that lands them"
    )
