"""Initial schema.

Revision ID: 0001
Revises:
"""

from reminders_pipeline.db.migrate import run_sql_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__)


def downgrade() -> None:
    raise NotImplementedError("the initial schema is not downgraded; drop the database instead")
