"""Repair the edits made to landed migrations; drop 0004's due-rule forms.

Revision ID: 0008
Revises: 0007
"""

from reminders_pipeline.db.migrate import run_sql_file

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__)


def downgrade() -> None:
    raise NotImplementedError("0008 is not downgraded; restore a backup instead")
