"""marketing tiers: how many people a business's marketing may reach per 24 hours

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "relay_business_tier",
        sa.Column("business", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("rating", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("moved_at", sa.BigInteger(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("business"),
    )


def downgrade() -> None:
    op.drop_table("relay_business_tier")
