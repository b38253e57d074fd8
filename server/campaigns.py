"""Creating, cancelling and reporting campaigns. Reports are aggregates, never people."""

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from server import signals
from server.billing import locked_balance, locked_campaign, movements_of, refund
from server.errors import ApiError
from server.known_accounts import KnownAccount
from server.models import SCHEDULED, Campaign, MailboxEntry, Template
from shared.api import INTERACTIONS, REFUSAL_CLASSES, CampaignCreate, CampaignReport
from shared.identifiers import new_campaign_id
from shared.signals import (
    DEFAULT_EPSILON_PER_BIT,
    DEFAULT_K,
    keep_probability,
    published_figures,
)

DAY_MS = 86_400_000
# A send time this far in the past is a mistake, not clock skew.
PAST_TOLERANCE_MS = 60_000


def create(
    session: Session,
    business: KnownAccount,
    body: CampaignCreate,
    now_ms: int,
    default_expiry_days: int,
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
    """Cancel what has not been released yet and refund it; released messages still count."""
    owned(session, business, campaign_id)
    campaign = locked_campaign(session, campaign_id)
    assert campaign is not None
    rows = list(
        session.exec(
            select(MailboxEntry)
            .where(MailboxEntry.campaign_id == campaign_id, MailboxEntry.state == SCHEDULED)
            .with_for_update()
        )
    )
    for row in rows:
        row.state, row.ciphertext = "cancelled", b""
    campaign.cancelled = True
    refund(
        session, movements_of((r.campaign_id, r.sender, r.price) for r in rows), now_ms, "cancelled"
    )
    session.commit()
    return campaign


def suppress_small(counts: dict[str, int], min_count: int) -> dict[str, int | None]:
    """Hide counts between 1 and ``min_count - 1``: a small count can point at one person
    ("the only one who blocked us"). When exactly one is hidden it could be recovered as the
    total minus the rest, so the next smallest non-zero count is hidden with it."""
    shown: dict[str, int | None] = dict(counts)
    hidden = [k for k, n in counts.items() if 0 < n < min_count]
    if len(hidden) == 1:
        others = sorted((n, k) for k, n in counts.items() if n and k not in hidden)
        hidden += [k for _, k in others[:1]]
    for key in hidden:
        shown[key] = None
    return shown


def _interactions(session: Session, campaign_id: str, k: int) -> dict[str, object]:
    """Debiased estimates from the anonymous reports, each hidden below k reports."""
    n, ones = signals.tally_of(session, campaign_id)
    p = keep_probability(DEFAULT_EPSILON_PER_BIT)
    figures, intervals = published_figures(ones, n, p, k, INTERACTIONS)
    return {"interactions": figures, "interaction_intervals": intervals, "signal_reports": n}


def report(
    session: Session, campaign: Campaign, now_ms: int, min_count: int, signals_k: int = DEFAULT_K
) -> CampaignReport:
    counts: dict[tuple[str, str | None], int] = {
        (state, reason): n
        for state, reason, n in session.exec(
            select(MailboxEntry.state, MailboxEntry.refusal, func.count())
            .where(MailboxEntry.campaign_id == campaign.id)
            .group_by(MailboxEntry.state, MailboxEntry.refusal)
        )
    }

    def total(state: str) -> int:
        return sum(n for (s, _), n in counts.items() if s == state)

    scheduled, in_mailbox = total("scheduled"), total("pending")
    by_reason = suppress_small(
        {r: counts.get(("refused", r), 0) for r in REFUSAL_CLASSES}, min_count
    )
    if campaign.cancelled:
        status = "cancelled"
    elif not counts:
        status = "open"  # created; no copy submitted yet
    elif scheduled and now_ms < campaign.send_at:
        status = "scheduled"
    elif scheduled or in_mailbox:
        status = "sending"
    else:
        status = "stopped" if campaign.stop_reason else "done"
    delivered = total("acked")
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
        delivered_to_mailbox=in_mailbox,
        delivered=delivered,
        refused=total("refused"),
        refused_by_reason=by_reason,
        expired=total("expired"),
        cancelled=total("cancelled"),
        spend=campaign.spent,
        reserved=campaign.reserved,
        refunded=campaign.refunded,
        cost_per_delivered=campaign.spent // delivered if delivered else None,
        **_interactions(session, campaign.id, signals_k),
    )
