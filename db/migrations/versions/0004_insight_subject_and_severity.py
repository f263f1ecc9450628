"""insights: subject and severity, and an index for the "same insight lately?" look-up

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("insights", sa.Column("subject", sa.String(length=200), nullable=True))
    op.add_column(
        "insights",
        sa.Column("severity", sa.String(length=16), server_default=sa.text("'info'"), nullable=False),
    )
    # The de-duplication rule asks for the newest rows of one (kind, subject) at every store.
    op.create_index("ix_insights_kind_subject_created_at", "insights", ["kind", "subject", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_insights_kind_subject_created_at", table_name="insights")
    for column in ("severity", "subject"):
        op.drop_column("insights", column)
