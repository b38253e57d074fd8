"""token key log: every campaign's token issuer key in a signed, append-only list

Devices check the key their token was proven against with this log, fetched through the
shuffler (server/token_log.py, shared/token_log.py). Campaigns that exist already are added
when a relay process starts (server.signals.publish_missing_keys), in the order they were
created.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "relay_token_log",
        sa.Column("campaign_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("public_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("valid_from", sa.BigInteger(), nullable=False),
        sa.Column("prev", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id"),
        sa.UniqueConstraint("idx", name="uq_token_log_idx"),
    )


def downgrade() -> None:
    op.drop_table("relay_token_log")
