"""business privacy: one copy per person per campaign, the privacy accountant, published figures

A campaign's figures are published once, with noise, and kept as published; each release is
charged to the business's privacy budget (server/figures.py, server/accountant.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    condition = sa.text("campaign_id IS NOT NULL")
    op.create_index(
        "uq_mailbox_campaign_recipient",
        "relay_mailbox",
        ["campaign_id", "recipient"],
        unique=True,
        sqlite_where=condition,
        postgresql_where=condition,
    )
    op.create_table(
        "relay_privacy_spend",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("business", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("campaign_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("micro_epsilon", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_relay_privacy_spend_business"), "relay_privacy_spend", ["business"])
    op.create_table(
        "relay_campaign_figures",
        sa.Column("campaign_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("published_at", sa.BigInteger(), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id"),
    )


def downgrade() -> None:
    op.drop_table("relay_campaign_figures")
    op.drop_index(op.f("ix_relay_privacy_spend_business"), table_name="relay_privacy_spend")
    op.drop_table("relay_privacy_spend")
    op.drop_index("uq_mailbox_campaign_recipient", table_name="relay_mailbox")
