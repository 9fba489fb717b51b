"""What a database's schema is, as one comparable value read from the catalog.

Two databases with equal catalogs have the same tables, columns, constraints,
indexes, views, functions (bodies included), triggers, privileges and comments in
schema public, and the same schema version. Owners are left out: they depend on
who migrated (0007 gives the tables to reminders_owner only when it may).
"""

from __future__ import annotations

from typing import Any

import psycopg

_QUERIES = {
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence,
               (SELECT string_agg(pg_get_userbyid(a.grantee) || ' ' || a.privilege_type, ', '
                                  ORDER BY 1)
                FROM aclexplode(c.relacl) a WHERE a.grantee <> c.relowner) AS acl,
               obj_description(c.oid, 'pg_class') AS comment,
               CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS view
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind <> 'i'
        ORDER BY 1""",
    "columns": """
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, a.attidentity, a.attgenerated,
               pg_get_expr(d.adbin, d.adrelid) AS default,
               (SELECT string_agg(pg_get_userbyid(x.grantee) || ' ' || x.privilege_type, ', '
                                  ORDER BY 1)
                FROM aclexplode(a.attacl) x) AS acl,
               col_description(c.oid, a.attnum) AS comment
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'p')
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY 1, 3""",
    "constraints": """
        SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE c.relnamespace = 'public'::regnamespace AND k.contype <> 'n'
        ORDER BY 1, 2""",
    "indexes": """
        SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid),
               (SELECT string_agg(pg_get_userbyid(x.grantee) || ' ' || x.privilege_type, ', '
                                  ORDER BY 1)
                FROM aclexplode(p.proacl) x WHERE x.grantee <> p.proowner) AS acl,
               obj_description(p.oid, 'pg_proc') AS comment
        FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
        ORDER BY 1, 2""",
    "triggers": """
        SELECT t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
        ORDER BY 1""",
    "version": "SELECT version_num FROM reminders_schema_version",
}


def catalog(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The schema of the database at url, section by section."""
    with psycopg.connect(url, autocommit=True) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in _QUERIES.items()}


def differences(left: dict[str, list], right: dict[str, list]) -> dict[str, Any]:
    """Per section, the rows only in left and only in right; {} when equal."""
    out = {}
    for name in left.keys() | right.keys():
        a, b = set(left.get(name, [])), set(right.get(name, []))
        if a != b:
            out[name] = {
                "only_left": sorted(map(str, a - b)),
                "only_right": sorted(map(str, b - a)),
            }
    return out
