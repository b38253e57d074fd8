"""campaign progress: copies refused at submission, and when a copy last came

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("relay_campaign") as batch:
        batch.add_column(sa.Column("rejected", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_copy_at", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("open_ended", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("relay_campaign") as batch:
        batch.drop_column("open_ended")
        batch.drop_column("last_copy_at")
        batch.drop_column("rejected")
