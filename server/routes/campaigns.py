"""A business's campaigns, budget and the price table."""

from fastapi import APIRouter, Request
from sqlmodel import col, select

from server import accountant, billing, campaigns, quality, rollout, signals, tiers
from server.auth import CurrentAccount, DbSession
from server.errors import ApiError
from server.models import Balance, Campaign, LedgerEntry, Template
from server.transactions import TransactionalRoute
from shared.api import (
    BudgetView,
    CampaignCreate,
    CampaignList,
    CampaignReport,
    FeatureAccess,
    LedgerLine,
    QualityView,
    TopUp,
)
from shared.pricing import PriceTable

router = APIRouter(prefix="/v1", tags=["campaigns"], route_class=TransactionalRoute)


def _report(request: Request, session: DbSession, campaign: Campaign) -> CampaignReport:
    state = request.app.state
    return campaigns.report(session, campaign, state.clock.now_ms(), state.figures)


@router.post("/campaigns", status_code=201)
def create_campaign(
    body: CampaignCreate, account: CurrentAccount, session: DbSession, request: Request
) -> CampaignReport:
    """Open a campaign for a registered template; then submit its sealed copies as template
    envelopes with this campaign id. Money is reserved per copy as it is submitted."""
    state = request.app.state
    now = state.clock.now_ms()
    campaign = campaigns.create(
        session,
        account,
        body,
        now,
        state.settings.default_expiry_days,
        marketing_tiers=state.settings.marketing_tiers,
        template_quality=state.settings.template_quality,
    )
    # Its token key is published before any copy can be released (so before any device asks
    # for a token): devices check the key they are given against this log.
    signals.publish_key(session, campaign.id, now)
    session.commit()
    return _report(request, session, campaign)


@router.get("/campaigns")
def list_campaigns(account: CurrentAccount, session: DbSession, request: Request) -> CampaignList:
    rows = session.exec(
        select(Campaign)
        .where(Campaign.business == account.handle)
        .order_by(col(Campaign.created_at))
    )
    return CampaignList(campaigns=[_report(request, session, c) for c in rows])


@router.get("/campaigns/{campaign_id}")
def campaign_status(
    campaign_id: str, account: CurrentAccount, session: DbSession, request: Request
) -> CampaignReport:
    """What the business did and paid, exactly; what people did, once, with noise."""
    return _report(request, session, campaigns.owned(session, account, campaign_id))


@router.post("/campaigns/{campaign_id}/cancel")
def cancel_campaign(
    campaign_id: str, account: CurrentAccount, session: DbSession, request: Request
) -> CampaignReport:
    """Cancel every copy not yet released and refund it."""
    campaign = campaigns.cancel(session, account, campaign_id, request.app.state.clock.now_ms())
    return _report(request, session, campaign)


def _budget(request: Request, session: DbSession, business: str) -> BudgetView:
    state = request.app.state
    balance = session.get(Balance, business) or Balance(business=business)
    entries = session.exec(
        select(LedgerEntry).where(LedgerEntry.business == business).order_by(col(LedgerEntry.id))
    )
    return BudgetView(
        currency=request.app.state.routing.prices.currency,
        available=balance.available,
        reserved=balance.reserved,
        spent=balance.spent,
        topped_up=balance.topped_up,
        ledger=[
            # Validated, not trusted: a kind the ledger does not know is a bug to hear about.
            LedgerLine.model_validate(e, from_attributes=True)
            for e in entries
        ],
        privacy=accountant.view(
            session,
            business,
            state.figures.budget_30d,
            state.figures.per_campaign,
            state.clock.now_ms(),
        ),
    )


@router.get("/budget")
def show_budget(account: CurrentAccount, session: DbSession, request: Request) -> BudgetView:
    """Balance and the full ledger of top-ups, reservations, charges and refunds."""
    _businesses_only(account.kind)
    return _budget(request, session, account.handle)


@router.post("/budget/top-up")
def top_up(
    body: TopUp, account: CurrentAccount, session: DbSession, request: Request
) -> BudgetView:
    """Add money (simulated payment)."""
    _businesses_only(account.kind)
    billing.top_up(session, account.handle, body.amount, request.app.state.clock.now_ms())
    session.commit()
    return _budget(request, session, account.handle)


@router.get("/quality")
def template_quality(account: CurrentAccount, session: DbSession, request: Request) -> QualityView:
    """The business's quality and marketing tier, and each template's rating from its
    published figures, with any pause (server/quality.py, server/tiers.py)."""
    _businesses_only(account.kind)
    now = request.app.state.clock.now_ms()
    templates = session.exec(
        select(Template)
        .where(Template.business == account.handle)
        .order_by(col(Template.created_at))
    )
    return QualityView(
        business=tiers.view(
            session, account.handle, now, enforced=request.app.state.settings.marketing_tiers
        ),
        templates=[quality.view(session, template, now) for template in templates],
    )


@router.get("/features")
def features(account: CurrentAccount, session: DbSession) -> dict[str, FeatureAccess]:
    """Which platform features this account has yet (staged rollout, server/rollout.py)."""
    found = {}
    for feature, what in rollout.FEATURES.items():
        state = rollout.state(session, feature)
        if state.has(account.handle):
            found[feature] = FeatureAccess(
                available=True, note=f"{what[0].upper()}{what[1:]} are open to your account."
            )
        else:
            found[feature] = FeatureAccess(available=False, note=rollout.unavailable_note(state))
    return found


@router.get("/pricing")
def pricing(_: CurrentAccount, request: Request) -> PriceTable:
    """The price per delivered template message by country and category."""
    return request.app.state.routing.prices


def _businesses_only(kind: str) -> None:
    if kind != "business":
        raise ApiError(403, "businesses_only", "Budgets belong to business accounts.")
