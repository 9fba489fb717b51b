"""SECURITY DEFINER functions owned by a role that gains nothing; tokens minted by the owner only.

Revision ID: 0010
Revises: 0009
"""

from reminders_pipeline.db.migrate import run_sql_file

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__)


def downgrade() -> None:
    raise NotImplementedError("0010 is not downgraded; restore a backup instead")
