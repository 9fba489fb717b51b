"""Alembic environment: migrations run on the connection that db.migrate hands in."""

from alembic import context

from reminders_pipeline.db.migrate import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
