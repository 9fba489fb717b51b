"""Key reminders by their silence and number, not by a date that depends on the interval.

Revision ID: 0003
Revises: 0002
"""

from reminders_pipeline.db.migrate import run_sql_file

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__)


def downgrade() -> None:
    raise NotImplementedError("0003 is not downgraded; restore a backup instead")
