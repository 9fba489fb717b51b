"""Delivery outbox: one delivery per (reminder, channel), mentors' channels and language.

Revision ID: 0006
Revises: 0005
"""

from reminders_pipeline.db.migrate import run_sql_file

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__)


def downgrade() -> None:
    raise NotImplementedError("0006 is not downgraded; restore a backup instead")
