"""Keep last_contact_date in step with activities; admin tokens and audit.

Revision ID: 0002
Revises: 0001
"""

from reminders_pipeline.db.migrate import run_sql_file

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__)


def downgrade() -> None:
    raise NotImplementedError("0002 is not downgraded; restore a backup instead")
