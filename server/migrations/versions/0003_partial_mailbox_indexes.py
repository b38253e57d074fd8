"""partial mailbox indexes

Each mailbox index now covers only the rows its queries look for (see server/models.py): an
ack updates one index entry instead of moving four, and a chat message is stored with two
index entries instead of five. Expiry gets an index of its own.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "relay_mailbox"


def _only(condition: str) -> dict[str, object]:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    for name in ("ix_mailbox_pending", "ix_mailbox_due", "ix_mailbox_released"):
        op.drop_index(name, table_name=_TABLE)
    op.drop_index("ix_mailbox_campaign", table_name=_TABLE)
    op.create_index(
        "ix_mailbox_pending", _TABLE, ["recipient", "seq"], **_only("state = 'pending'")
    )
    op.create_index("ix_mailbox_due", _TABLE, ["not_before"], **_only("state = 'scheduled'"))
    op.create_index(
        "ix_mailbox_expiring",
        _TABLE,
        ["expires_at"],
        **_only("state IN ('pending', 'scheduled') AND expires_at IS NOT NULL"),
    )
    op.create_index(
        "ix_mailbox_released",
        _TABLE,
        ["recipient", "released_at"],
        **_only("category = 'marketing'"),
    )
    op.create_index(
        "ix_mailbox_campaign", _TABLE, ["campaign_id", "state"], **_only("campaign_id IS NOT NULL")
    )


def downgrade() -> None:
    for name in (
        "ix_mailbox_pending",
        "ix_mailbox_due",
        "ix_mailbox_expiring",
        "ix_mailbox_released",
        "ix_mailbox_campaign",
    ):
        op.drop_index(name, table_name=_TABLE)
    op.create_index("ix_mailbox_campaign", _TABLE, ["campaign_id", "state"])
    op.create_index("ix_mailbox_due", _TABLE, ["state", "not_before"])
    op.create_index("ix_mailbox_pending", _TABLE, ["recipient", "state", "seq"])
    op.create_index("ix_mailbox_released", _TABLE, ["recipient", "category", "released_at"])
