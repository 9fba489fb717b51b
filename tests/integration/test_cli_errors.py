"""Bad input to the `reminders` command: one clear line on stderr, a non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.runs import Finished

pytestmark = pytest.mark.acceptance

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/reminders"


def assert_one_clear_error(result: Finished, *fragments: str) -> None:
    assert result.returncode != 0, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.stdout == "", f"nothing belongs on stdout on error, got {result.stdout!r}"


@pytest.mark.parametrize(
    "args", [("run", "--json"), ("runs", "--json"), ("lock", "status", "--json")]
)
def test_unreachable_database_is_one_error_line(reminders_cli, args):
    result = reminders_cli(*args, env={"REMINDERS_DATABASE_URL": UNREACHABLE}, timeout=60)
    assert_one_clear_error(result, "cannot connect", "127.0.0.1:1")


@pytest.mark.parametrize("url", ["not a url", "postgresql://[::1"])
def test_malformed_database_url_is_one_error_line(reminders_cli, url):
    result = reminders_cli("run", "--json", env={"REMINDERS_DATABASE_URL": url}, timeout=60)
    assert_one_clear_error(result, "REMINDERS_DATABASE_URL")


@pytest.mark.parametrize("as_of", ["2024-13-45", "yesterday", "1999-01-01"])
def test_bad_as_of_is_one_error_line(reminders_cli, as_of):
    result = reminders_cli("run", "--json", "--as-of", as_of, timeout=60)
    assert_one_clear_error(result, as_of)


@pytest.mark.parametrize("as_of", ["", " ", " 2026-01-05"])
def test_blank_as_of_is_refused_naming_the_option(reminders_cli, db, as_of):
    """An empty --as-of is not "today": it is refused, and no run starts."""
    result = reminders_cli("run", "--json", "--as-of", as_of, timeout=60)
    assert_one_clear_error(result, "--as-of", repr(as_of))
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM reminder_runs").fetchone()["n"] == 0


def test_negative_assignments_is_one_error_line(reminders_cli):
    result = reminders_cli("seed", "--assignments", "-5", timeout=60)
    assert_one_clear_error(result, "--assignments", "-5")


def test_production_instance_without_database_url_is_one_error_line(reminders_cli, tmp_path):
    """On a Postgres-storage Dagster instance the embedded database is refused, by name."""
    home = tmp_path / "prod_dagster_home"
    home.mkdir()
    repo = Path(__file__).resolve().parents[2]
    (home / "dagster.yaml").write_text((repo / "dagster.postgres.yaml").read_text())
    result = reminders_cli(
        "runs", "--json", env={"REMINDERS_DATABASE_URL": "", "DAGSTER_HOME": str(home)}, timeout=60
    )
    assert_one_clear_error(result, "REMINDERS_DATABASE_URL is not set", "production")
    assert not (tmp_path / "reminders_home" / "pgdata").exists(), "an embedded server started"
