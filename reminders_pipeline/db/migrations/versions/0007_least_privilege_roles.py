"""Least-privilege roles: the job, the admin API, the migrations' owner.

Revision ID: 0007
Revises: 0006
"""

from reminders_pipeline.db.migrate import run_sql_file

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__)


def downgrade() -> None:
    raise NotImplementedError("0007 is not downgraded; restore a backup instead")
