"""message requests: who a person accepts, and what strangers got through before that

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "relay_acceptance",
        sa.Column("person", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("peer", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("person", "peer"),
    )
    op.create_table(
        "relay_message_request",
        sa.Column("person", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("sender", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("person", "sender"),
    )
    op.create_index(
        "ix_message_request_person_first", "relay_message_request", ["person", "first_at"]
    )
    # Who already wrote to a business has accepted it.
    op.execute(
        "INSERT INTO relay_acceptance (person, peer, at) "
        "SELECT person, business, last_at FROM relay_chat_contact"
    )


def downgrade() -> None:
    op.drop_index("ix_message_request_person_first", table_name="relay_message_request")
    op.drop_table("relay_message_request")
    op.drop_table("relay_acceptance")
