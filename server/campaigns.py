"""Creating, cancelling and reporting campaigns. Reports are aggregates, never people."""

from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from server import accountant, quality, rollout, tiers
from server.billing import locked_balance, locked_campaign
from server.errors import ApiError
from server.figures import FiguresPolicy, figures_at, stored
from server.known_accounts import KnownAccount
from server.models import Campaign, MailboxEntry, Template
from server.withdrawal import withdraw_pending, withdraw_scheduled
from shared.api import CampaignCreate, CampaignReport, CampaignStatus
from shared.identifiers import new_campaign_id
from shared.templates import TemplateDraft, priced_category

DAY_MS = 86_400_000
# A send time this far in the past is a mistake, not clock skew.
PAST_TOLERANCE_MS = 60_000
# Far enough for any real schedule, near enough that send time plus expiry fits in 64 bits.
MAX_AHEAD_MS = 366 * DAY_MS
# A campaign short of its audience with no copy for this long is called interrupted: the
# console sends its batches seconds apart, and waits less than this for a relay that is away.
IDLE_MS = 60_000


def create(
    session: Session,
    business: KnownAccount,
    body: CampaignCreate,
    now_ms: int,
    default_expiry_days: int,
    marketing_tiers: bool = False,
    template_quality: bool = True,
) -> Campaign:
    if business.kind != "business":
        raise ApiError(403, "businesses_only", "Only business accounts run campaigns.")
    template = session.get(Template, body.template_id)
    if template is None or template.business != business.handle:
        raise ApiError(
            404,
            "unknown_template",
            f"No template '{body.template_id}' of {business.handle}; see "
            "`sealpost business template list`.",
        )
    if template_quality:
        quality.require_usable(session, template.id, now_ms)
    draft = TemplateDraft.model_validate_json(template.definition)
    if priced_category(template.category, draft) == "marketing":
        rollout.require(session, "marketing", business.handle)
        if marketing_tiers:
            tiers.require_room(session, business.handle, body.audience_size, now_ms)
    if body.budget <= 0:
        raise ApiError(422, "invalid_budget", f"The budget must be positive, got {body.budget}.")
    send_at = now_ms if body.send_at is None else body.send_at
    if send_at < now_ms - PAST_TOLERANCE_MS:
        raise ApiError(
            422,
            "send_time_past",
            f"The send time is {(now_ms - send_at) // 1000} s in the past; "
            "pick a future time or omit it to send now.",
        )
    if send_at > now_ms + MAX_AHEAD_MS:
        raise ApiError(
            422,
            "send_time_far",
            f"The send time is {(send_at - now_ms) // DAY_MS:,} days ahead; schedule at most "
            f"{MAX_AHEAD_MS // DAY_MS} days ahead.",
        )
    balance = locked_balance(session, business.handle)
    if body.budget > balance.available:
        raise ApiError(
            402,
            "insufficient_balance",
            f"The budget ({body.budget} micro-units) exceeds the available balance "
            f"({balance.available}); top up first.",
        )
    if body.id is not None and session.get(Campaign, body.id) is not None:
        raise ApiError(
            409, "campaign_exists", f"A campaign '{body.id}' exists; choose another random id."
        )
    days = body.expires_in_days or default_expiry_days
    campaign = Campaign(
        id=body.id or new_campaign_id(),
        business=business.handle,
        name=body.name or template.name,
        template_id=template.id,
        category=template.category,
        send_at=send_at,
        expires_at=send_at + days * DAY_MS,
        budget=body.budget,
        targeted=body.audience_size,
        open_ended=body.open_ended,
        created_at=now_ms,
    )
    session.add(campaign)
    try:
        session.commit()
    except IntegrityError:  # the same id, created concurrently
        session.rollback()
        raise ApiError(
            409, "campaign_exists", f"A campaign '{body.id}' exists; choose another random id."
        ) from None
    return campaign


def owned(session: Session, business: KnownAccount, campaign_id: str) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.business != business.handle:
        raise ApiError(
            404, "unknown_campaign", f"No campaign '{campaign_id}' of {business.handle}."
        )
    return campaign


def cancel(session: Session, business: KnownAccount, campaign_id: str, now_ms: int) -> Campaign:
    """Cancel what has not been released yet and refund it; take back what was released and
    not yet delivered (charged, as any released copy: see withdraw_pending)."""
    owned(session, business, campaign_id)
    campaign = locked_campaign(session, campaign_id)
    assert campaign is not None
    campaign.cancelled = True
    withdraw_scheduled(session, [campaign_id], now_ms, "cancelled")
    withdraw_pending(session, campaign_id)
    session.commit()
    return campaign


def report(
    session: Session, campaign: Campaign, now_ms: int, policy: FiguresPolicy
) -> CampaignReport:
    """What a business may read about its campaign: exact counts of what it did and paid
    (none depends on any person), and the figures about people once published with noise."""
    counts: dict[str, int] = {
        state: n
        for state, n in session.exec(
            select(MailboxEntry.state, func.count())
            .where(MailboxEntry.campaign_id == campaign.id)
            .group_by(MailboxEntry.state)
        )
    }
    scheduled = counts.get("scheduled", 0)
    cancelled = counts.get("cancelled", 0)
    # Copies whose send time came (whatever became of them); the states after release are
    # summed, never shown apart.
    sent = sum(n for state, n in counts.items() if state not in ("scheduled", "cancelled"))
    due_at = figures_at(campaign, policy)
    published = stored(session, campaign.id)
    status: CampaignStatus
    held_until: int | None = None  # while a paused template holds its copies
    if published is not None:
        status, note = ("cancelled" if campaign.cancelled else "done"), "published"
    elif campaign.cancelled and not sent:
        status, note = "cancelled", "nothing was sent, so there are no figures"
    elif campaign.cancelled:
        status, note = "cancelled", f"due at {_when(due_at)}"
    elif not counts:
        status, note = "open", f"due at {_when(due_at)}, once copies are sent"
    elif scheduled and now_ms < campaign.send_at:
        status, note = "scheduled", f"due at {_when(due_at)}"
    elif scheduled and (
        held_until := quality.paused_campaigns(session, [campaign.id], now_ms).get(campaign.id)
    ):
        status, note = "held", f"due at {_when(due_at)}"
    elif scheduled:
        status, note = "sending", f"due at {_when(due_at)}"
    elif now_ms < due_at:
        status, note = "sent", f"due at {_when(due_at)}"
    else:
        renews = accountant.renewal(
            session,
            campaign.business,
            accountant.to_micro(policy.per_campaign),
            accountant.to_micro(policy.budget_30d),
            now_ms,
        )
        status = "withheld"
        note = (
            "withheld: your privacy budget for the last 30 days is spent; the figures are "
            f"published once it renews, at about {_when(max(renews, now_ms))}"
        )
    if campaign.stop_reason and status in ("sending", "sent"):
        status = "stopped"
    elif status in ("open", "scheduled", "sending", "sent") and _cut_short(campaign, now_ms):
        status = "interrupted"
        note = (
            f"interrupted: {campaign.accepted} of {campaign.targeted} copies accepted, none for "
            f"a minute; finish it with `sealpost business campaign resume {campaign.id}` (or "
            "cancel it)"
        )
    return CampaignReport(
        id=campaign.id,
        name=campaign.name,
        template_id=campaign.template_id,
        category=campaign.category,
        status=status,
        stop_reason=campaign.stop_reason,
        send_at=campaign.send_at,
        expires_at=campaign.expires_at,
        budget=campaign.budget,
        targeted=campaign.targeted,
        accepted=campaign.accepted,
        rejected_budget=campaign.rejected_budget,
        scheduled=scheduled,
        sent=sent,
        cancelled=cancelled,
        spend=campaign.spent,
        reserved=campaign.reserved,
        refunded=campaign.refunded,
        figures_at=due_at,
        figures_note=note,
        figures=published,
        held_until=held_until,
    )


def _cut_short(campaign: Campaign, now_ms: int) -> bool:
    """Short of its declared audience, and no copy for ``IDLE_MS``: its console stopped
    part way (killed, or the relay was away longer than it waited)."""
    if campaign.open_ended:
        return False
    answered = campaign.accepted + campaign.rejected_budget + campaign.rejected
    last = campaign.last_copy_at if campaign.last_copy_at is not None else campaign.created_at
    return answered < campaign.targeted and now_ms - last > IDLE_MS


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
