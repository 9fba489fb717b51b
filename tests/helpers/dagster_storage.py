"""Dagster instances on dagster-postgres storage, configured by the shipped
dagster.postgres.yaml: a fresh database on the test server for each."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import yaml
from psycopg.conninfo import conninfo_to_dict

REPO = Path(__file__).resolve().parents[2]


def postgres_storage_home(
    pg_server_url: str, prefix: str, home: Path
) -> tuple[str, dict[str, str]]:
    """A new database for Dagster's storage and `home` (made if missing) holding the instance
    file for it: the database's name and the DAGSTER_PG_* variables the file reads.
    drop_database(pg_server_url, name) when done."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(pg_server_url)
    host = str(params.get("host") or "127.0.0.1")
    config = yaml.safe_load((REPO / "dagster.postgres.yaml").read_text())
    if host.startswith("/"):
        # The embedded server listens on a unix socket: libpq takes its folder as `host`,
        # which the URL's hostname cannot carry; the params are passed through as is.
        config["storage"]["postgres"]["postgres_db"]["params"] = {"host": host}
        host = "localhost"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    env = {
        "DAGSTER_PG_HOST": host,
        "DAGSTER_PG_PORT": str(params.get("port") or 5432),
        "DAGSTER_PG_DB": name,
        "DAGSTER_PG_USERNAME": str(params.get("user") or "postgres"),
        "DAGSTER_PG_PASSWORD": str(params.get("password") or ""),
    }
    return name, env


def drop_database(pg_server_url: str, name: str) -> None:
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
