"""The named-query file parses, and every name the code asks for exists."""

import re
from pathlib import Path

import pytest

from reminders_pipeline.db.queries import all_queries, query

PACKAGE = Path(__file__).resolve().parents[2] / "reminders_pipeline"


def test_every_query_name_used_in_the_code_is_defined():
    used: set[str] = set()
    pattern = re.compile(
        r"""(?:query|fetch_one|fetch_all|execute|\.one|\.all|\.run)\(\s*["'](\w+)["']"""
    )
    for path in PACKAGE.rglob("*.py"):
        used |= set(pattern.findall(path.read_text()))
    missing = used - set(all_queries())
    assert not missing, f"queries used but not defined in queries.sql: {sorted(missing)}"


def test_queries_have_bodies():
    for name, sql in all_queries().items():
        assert sql and not sql.startswith("-- name"), name


def test_unknown_query_name_is_a_clear_error():
    with pytest.raises(KeyError, match="no query named 'nope'"):
        query("nope")
