"""Logins in the project's roles, for tests that connect as a role instead of as the owner."""

from __future__ import annotations

from psycopg.conninfo import make_conninfo

# The roles migration 0007 makes; the `logins` fixture has a login in each.
ROLES = ("reminders_job", "reminders_admin_api", "reminders_contacts", "reminders_owner")


def as_login(url: str, name: str) -> str:
    """`url` with `name` as its user."""
    return make_conninfo(url, user=name)
