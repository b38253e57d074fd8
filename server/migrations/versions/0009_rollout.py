"""staged rollout: a share of accounts per platform feature, and its beta testers

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "relay_rollout",
        sa.Column("feature", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("feature"),
    )
    op.create_table(
        "relay_rollout_beta",
        sa.Column("feature", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("handle", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("feature", "handle"),
    )


def downgrade() -> None:
    op.drop_table("relay_rollout_beta")
    op.drop_table("relay_rollout")
