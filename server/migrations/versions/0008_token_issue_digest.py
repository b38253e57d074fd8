"""a token issue keeps a digest of the blinded element it answered, so a retried request is
answered again

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("relay_token_issue") as batch:
        batch.add_column(sa.Column("blinded_digest", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("relay_token_issue") as batch:
        batch.drop_column("blinded_digest")
