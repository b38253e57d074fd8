"""Taking a campaign's still-scheduled copies back out of the mailboxes, with their money.

A business cancels a campaign, or the relay disables its template (server/quality.py): either
way the copies whose send time has not come are never released, and what was reserved for
them becomes available again. Released copies are not touched; they were sent and charged.
"""

from collections.abc import Collection

from sqlalchemy import select, update
from sqlmodel import Session, col

from server.billing import locked_campaign, movements_of, refund
from server.models import PENDING, SCHEDULED, Campaign, MailboxEntry, TemplateQuality
from server.sql_lists import one_of

DISABLED_NOTE = (
    "its template was disabled after its quality fell to low three times; the copies not yet "
    "sent were withdrawn and refunded"
)


def withdraw_scheduled(
    session: Session, campaign_ids: Collection[str], now_ms: int, why: str
) -> int:
    """Withdraw and refund every scheduled copy of these campaigns, in the caller's
    transaction; returns how many copies."""
    if not campaign_ids:
        return 0
    table = MailboxEntry.__table__  # type: ignore[attr-defined]
    rows = list(
        session.execute(
            select(table.c.seq, table.c.campaign_id, table.c.sender, table.c.price)
            .where(one_of(table.c.campaign_id, list(campaign_ids)), table.c.state == SCHEDULED)
            .with_for_update()
        )
    )
    if rows:
        session.execute(
            update(table)
            .where(one_of(table.c.seq, [r.seq for r in rows]))
            .values(state="cancelled", ciphertext=b"")
        )
        refund(session, movements_of((r.campaign_id, r.sender, r.price) for r in rows), now_ms, why)
    return len(rows)


def withdraw_pending(session: Session, campaign_id: str) -> int:
    """Take back this campaign's copies released but not yet delivered (their people were
    away), in the caller's transaction; returns how many. They were charged at release and
    are not refunded here: a refund now would tell the business how many of its people had
    not yet come online. They count as undelivered, as an expired copy does, in the noisy
    figures, whose rebate returns what they cost."""
    table = MailboxEntry.__table__  # type: ignore[attr-defined]
    done = session.execute(
        update(table)
        .where(table.c.campaign_id == campaign_id, table.c.state == PENDING)
        .values(state="expired", ciphertext=b"")
    )
    return int(getattr(done, "rowcount", 0) or 0)  # a CursorResult for an UPDATE


def withdraw_disabled(session: Session, now_ms: int) -> int:
    """Stop every campaign of a disabled template that is not stopped yet, withdrawing its
    scheduled copies; commits. Disabled templates are few, so this is a small query."""
    stopping = list(
        session.execute(
            select(col(Campaign.id))
            .join(TemplateQuality, col(TemplateQuality.template_id) == col(Campaign.template_id))
            .where(
                col(TemplateQuality.disabled),
                col(Campaign.stop_reason).is_(None),
                col(Campaign.cancelled).is_(False),
            )
        ).scalars()
    )
    if not stopping:
        return 0
    for campaign_id in sorted(stopping):  # a fixed order: two relays cannot deadlock
        campaign = locked_campaign(session, campaign_id)
        if campaign is not None and campaign.stop_reason is None:
            campaign.stop_reason = DISABLED_NOTE
    withdrawn = withdraw_scheduled(session, stopping, now_ms, "template_disabled")
    session.commit()
    return withdrawn
