"""Load the named queries of queries.sql: `-- name: xxx` headers, each followed by its SQL."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

QUERIES_FILE = Path(__file__).with_name("queries.sql")
_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def all_queries() -> dict[str, str]:
    text = QUERIES_FILE.read_text()
    parts = _HEADER.split(text)
    # parts = [preamble, name1, sql1, name2, sql2, ...]
    queries: dict[str, str] = {}
    for name, sql in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice in {QUERIES_FILE}")
        queries[name] = sql.strip()
    return queries


def query(name: str) -> str:
    try:
        return all_queries()[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in {QUERIES_FILE}") from None
