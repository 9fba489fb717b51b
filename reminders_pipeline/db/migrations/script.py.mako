"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""

from reminders_pipeline.db.migrate import run_sql_file

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Put the SQL in a .sql file with the same name as this one.
    run_sql_file(__file__)


def downgrade() -> None:
    raise NotImplementedError
