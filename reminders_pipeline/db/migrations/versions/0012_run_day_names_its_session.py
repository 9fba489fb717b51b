"""reminders_run_day() names its session while it holds the run lock (the stale-lock sensor).

Revision ID: 0012
Revises: 0011
"""

from reminders_pipeline.db.migrate import run_sql_file

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__)


def downgrade() -> None:
    raise NotImplementedError("0012 is not downgraded; restore a backup instead")
