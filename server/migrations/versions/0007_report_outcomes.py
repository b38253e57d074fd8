"""signal reports carry one outcome (k-ary randomized response), not seven bits

The tally per campaign counts reports per reported outcome (not_read, read, clicked,
dismissed) and those with no signal. Tallies of first-version reports (a bitmask over seven
events, each bit flipped on its own) cannot be read as outcomes and are dropped: a campaign
whose figures were not yet published when the relay was upgraded publishes from the reports
counted after it (relays refuse first-version reports as invalid_report).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OUTCOME_COLUMNS = ("not_read", "read", "clicked", "dismissed", "no_signal")
_EVENT_COLUMNS = (
    "delivered",
    "read",
    "clicked",
    "dismissed",
    "stopped_promotions",
    "blocked",
    "reported",
)


def _tally(columns: tuple[str, ...]) -> None:
    op.create_table(
        "relay_signal_tally",
        sa.Column("campaign_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in columns),
        sa.PrimaryKeyConstraint("campaign_id"),
    )


def upgrade() -> None:
    op.drop_table("relay_signal_tally")
    _tally(_OUTCOME_COLUMNS)


def downgrade() -> None:
    op.drop_table("relay_signal_tally")
    _tally(_EVENT_COLUMNS)
