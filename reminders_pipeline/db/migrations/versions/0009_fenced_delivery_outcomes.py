"""Fenced delivery outcomes: a lease token per claim, and no state moves back from a final one.

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
