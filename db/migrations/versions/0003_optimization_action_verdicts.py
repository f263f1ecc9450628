"""optimization_actions: the rule, the metric before and after the settle window, the verdict

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("optimization_actions", sa.Column("rule", sa.String(length=100), nullable=True))
    op.add_column(
        "optimization_actions", sa.Column("before", postgresql.JSONB(none_as_null=True), nullable=True)
    )
    op.add_column(
        "optimization_actions", sa.Column("after", postgresql.JSONB(none_as_null=True), nullable=True)
    )
    op.add_column("optimization_actions", sa.Column("verdict", sa.String(length=16), nullable=True))
    op.add_column("optimization_actions", sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ("settled_at", "verdict", "after", "before", "rule"):
        op.drop_column("optimization_actions", column)
