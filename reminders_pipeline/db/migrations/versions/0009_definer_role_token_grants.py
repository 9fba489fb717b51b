"""SECURITY DEFINER functions owned by a role that gains nothing; tokens minted by the owner only.

Revision ID: 0009
Revises: 0008
"""

from reminders_pipeline.db.migrate import run_sql_file

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__)


def downgrade() -> None:
    raise NotImplementedError("0009 is not downgraded; restore a backup instead")
