"""The due rule as SQL functions that every query calls.

Revision ID: 0004
Revises: 0003
"""

from reminders_pipeline.db.migrate import run_sql_file

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__)


def downgrade() -> None:
    raise NotImplementedError("0004 is not downgraded; restore a backup instead")
