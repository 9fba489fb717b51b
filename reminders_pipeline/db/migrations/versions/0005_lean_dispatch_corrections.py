"""A lean notifications hot path; reminders counted across corrections.

Revision ID: 0005
Revises: 0004
"""

from reminders_pipeline.db.migrate import run_sql_file

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__)


def downgrade() -> None:
    raise NotImplementedError("0005 is not downgraded; restore a backup instead")
