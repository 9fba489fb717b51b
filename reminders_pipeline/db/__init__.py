"""Database access: connection helpers, named SQL queries and migrations."""

from reminders_pipeline.db.connector import Database, connect
from reminders_pipeline.db.queries import query

__all__ = ["Database", "connect", "query"]
