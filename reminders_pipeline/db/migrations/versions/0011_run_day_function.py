"""The day's run as one SQL call: reminders_run_day(), under a transaction-level lock.

Revision ID: 0011
Revises: 0010
"""

from reminders_pipeline.db.migrate import run_sql_file

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__)


def downgrade() -> None:
    raise NotImplementedError("0011 is not downgraded; restore a backup instead")
