"""reminders_run_day() over RPC, as PostgREST (and Supabase's API) calls it: one
transaction per request, on the `authenticator` login, switched to the role the JWT
names with SET LOCAL ROLE, that role's settings applied, the call by name with its
arguments named, the answer as JSON (docs/operations.md, "Calling it over RPC").

PostgREST itself is not packaged for Debian: the request's statements are made here
as PostgREST 12 makes them for `POST /rpc/reminders_run_day`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from reminders_pipeline.db.connector import Database
from reminders_pipeline.db.seed import seed
from reminders_pipeline.settings import ReminderSettings

TODAY = ReminderSettings().today()


@pytest.fixture
def roles(db_url: str) -> Iterator[dict[str, str]]:
    """The recipe's roles, named for this test (roles are the server's): PostgREST's
    login (NOINHERIT: it has no rights of its own), the RPC role, and `anon`."""
    suffix = uuid.uuid4().hex[:8]
    made = {
        "authenticator": f"authenticator_t{suffix}",
        "rpc": f"reminders_rpc_t{suffix}",
        "anon": f"anon_t{suffix}",
    }
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{made["authenticator"]}" LOGIN NOINHERIT')
        conn.execute(f'CREATE ROLE "{made["rpc"]}" NOLOGIN IN ROLE reminders_job')
        conn.execute(f'CREATE ROLE "{made["anon"]}" NOLOGIN')
        conn.execute(f'GRANT "{made["rpc"]}", "{made["anon"]}" TO "{made["authenticator"]}"')
        conn.execute(f"ALTER ROLE \"{made['rpc']}\" SET reminders.trigger = 'rpc'")
    yield made
    with psycopg.connect(db_url, autocommit=True) as conn:
        for role in made.values():
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def rpc(db_url: str, authenticator: str, role: str, body: dict[str, Any]) -> list[dict]:
    """POST /rpc/reminders_run_day with `body`, by a JWT whose role claim is `role`."""
    args = ", ".join(f'"{name}" := %({name})s' for name in body)
    with psycopg.connect(make_conninfo(db_url, user=authenticator)) as conn:
        conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE")
        conn.execute(
            "SELECT set_config('search_path', '\"public\"', true),"
            " set_config('role', %(role)s, true),"
            " set_config('request.jwt.claims', %(claims)s, true),"
            " set_config('request.method', 'POST', true),"
            " set_config('request.path', '/rpc/reminders_run_day', true)",
            {"role": role, "claims": json.dumps({"role": role})},
        )
        # The impersonated role's own settings (PostgREST 11+ reads pg_db_role_setting).
        for setting in conn.execute(
            "SELECT unnest(setconfig) FROM pg_db_role_setting"
            " WHERE setrole = %s::regrole AND setdatabase = 0",
            (role,),
        ).fetchall():
            name, value = setting[0].split("=", 1)
            conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        [answer] = conn.execute(
            "WITH pgrst_source AS (SELECT pgrst_call.* FROM"
            f' "public"."reminders_run_day"({args}) pgrst_call)'
            " SELECT coalesce(json_agg(_postgrest_t), '[]')::text AS body"
            " FROM (SELECT * FROM pgrst_source) _postgrest_t",
            body,
        ).fetchone()
        conn.commit()
    return json.loads(answer)


def test_the_rpc_role_runs_the_day_with_no_arguments_and_again_for_a_past_day(db_url, roles):
    seed(Database(db_url), assignments=300, due_fraction=0.4, today=TODAY,
         default_interval_days=10)  # fmt: skip
    [today_run] = rpc(db_url, roles["authenticator"], roles["rpc"], {})
    assert today_run["status"] == "success" and today_run["created"] > 0
    [again] = rpc(db_url, roles["authenticator"], roles["rpc"], {"as_of": TODAY.isoformat()})
    assert (again["status"], again["created"]) == ("success", 0)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT trigger, lock_scope, status FROM reminder_runs ORDER BY id"
        ).fetchall()
    assert rows == [("rpc", "transaction", "success")] * 2


@pytest.mark.parametrize("who", ["anon", "authenticator"])
def test_no_other_role_may_call_it(db_url, roles, who):
    # `anon` (no grant) and PostgREST's own login (NOINHERIT: it has nothing unswitched).
    role = roles[who]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        rpc(db_url, roles["authenticator"], role, {})
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM reminder_runs").fetchone()[0] == 0
