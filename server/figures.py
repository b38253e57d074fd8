"""A campaign's figures: published once, with central noise, at a time nobody's device chooses.

What happened to each copy (delivered, refused and why, not delivered) and what people did
with it (the anonymous reports) is about people; a business sees it only here, once per
campaign, at ``send_at + figures_after_h`` (or the campaign's expiry, if sooner), with
OpenDP's discrete Laplace noise (server/noise.py), charged to the business's privacy budget
(server/accountant.py). The noisy release also sets the campaign's rebate for copies that
were not delivered: money follows the noisy figures, never the exact ones. The policy and
its ε are in docs/privacy-boundary.md ("What a business sees").
"""

from dataclasses import dataclass

from sqlalchemy import exists, func, or_
from sqlmodel import Session, col, select

from server import accountant, noise, quality, tiers
from server.billing import locked_balance, locked_campaign, rebate
from server.models import Campaign, MailboxEntry, PublishedFigures
from server.signals import tally_of
from shared.api import REFUSAL_CLASSES, CampaignFigures, Estimate, NoisyCount
from shared.signals import NO_SIGNAL, OUTCOMES, ReportValue, estimate

HOUR_MS = 3_600_000
# One person has one copy per campaign (the relay refuses a second), so changing what that
# person did moves one copy from one outcome to another: two counts change by one each.
OUTCOME_SENSITIVITY = 2
# One person sends at most one report per campaign (one token per copy), carrying one value.
# Changing what that person did (or whether their report carries a signal) moves their report
# from one value's tally to another's: two tallies change by one each, as for the outcomes
# above. The report count is the tallies' sum, not a count of its own.
TALLY_SENSITIVITY = 2
_TALLIED: tuple[ReportValue, ...] = (NO_SIGNAL, *OUTCOMES)


@dataclass(frozen=True)
class FiguresPolicy:
    """When figures are published and what they cost (from the relay's settings)."""

    after_ms: int
    epsilon_counts: float
    epsilon_interactions: float
    budget_30d: float
    # Pause and disable templates whose rating falls to low (server/quality.py).
    template_quality: bool = True

    @property
    def per_campaign(self) -> float:
        return self.epsilon_counts + self.epsilon_interactions


def figures_at(campaign: Campaign, policy: FiguresPolicy) -> int:
    """When this campaign's figures are due: a time fixed when it was created."""
    return min(campaign.send_at + policy.after_ms, campaign.expires_at)


def stored(session: Session, campaign_id: str) -> CampaignFigures | None:
    row = session.get(PublishedFigures, campaign_id)
    return None if row is None else CampaignFigures.model_validate_json(row.body)


def publish_due(session: Session, policy: FiguresPolicy, now_ms: int) -> int:
    """Publish every campaign whose figures are due and fit its business's budget, oldest
    first; a business whose budget is spent waits (its later campaigns queue behind).
    Returns how many were published. Commits each publication on its own."""
    due = list(
        session.exec(
            select(Campaign)
            .where(
                or_(
                    col(Campaign.send_at) <= now_ms - policy.after_ms,
                    col(Campaign.expires_at) <= now_ms,
                ),
                ~exists().where(col(PublishedFigures.campaign_id) == col(Campaign.id)),
            )
            .order_by(col(Campaign.send_at), col(Campaign.id))
        )
    )
    count = 0
    blocked: set[str] = set()
    for campaign in due:
        if campaign.business in blocked or figures_at(campaign, policy) > now_ms:
            continue
        if publish(session, campaign.id, policy, now_ms):
            count += 1
        else:
            blocked.add(campaign.business)
    return count


def _outcomes(session: Session, campaign_id: str) -> tuple[dict[str, int], int]:
    """Exact counts by outcome (never shown as they are) and how many copies were sent."""
    rows = session.exec(
        select(MailboxEntry.state, MailboxEntry.refusal, func.count())
        .where(MailboxEntry.campaign_id == campaign_id)
        .group_by(col(MailboxEntry.state), col(MailboxEntry.refusal))
    )
    counts = {"delivered": 0, "not_delivered": 0} | dict.fromkeys(REFUSAL_CLASSES, 0)
    for state, refusal, n in rows:
        if state == "acked":
            counts["delivered"] += n
        elif state == "refused":
            counts[refusal or "blocked"] += n
        elif state != "cancelled":  # pending, expired, or (a lagging dispatcher) scheduled
            counts["not_delivered"] += n
    return counts, sum(counts.values())


def publish(session: Session, campaign_id: str, policy: FiguresPolicy, now_ms: int) -> bool:
    """Release one campaign's figures and settle its rebate, in one transaction. False if the
    business's privacy budget cannot pay for it yet (nothing changes)."""
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None
    locked_balance(session, campaign.business)  # serialises releases of one business
    campaign = locked_campaign(session, campaign_id)
    assert campaign is not None
    if session.get(PublishedFigures, campaign_id) is not None:  # another process was first
        session.rollback()
        return True
    exact, sent = _outcomes(session, campaign_id)
    epsilon = policy.per_campaign if sent else 0.0
    if sent and not accountant.try_spend(
        session, campaign.business, campaign_id, epsilon, policy.budget_30d, now_ms
    ):
        session.rollback()
        return False
    figures = _release(session, campaign, exact, sent, policy, now_ms, epsilon)
    if figures.rebate:
        undelivered = figures.refused.value + figures.not_delivered.value
        rebate(
            session,
            campaign,
            figures.rebate,
            now_ms,
            f"about {max(0, undelivered)} copies not delivered (published estimate)",
        )
    session.add(
        PublishedFigures(
            campaign_id=campaign_id, published_at=now_ms, body=figures.model_dump_json()
        )
    )
    session.flush()
    # Post-processing of published figures only: costs no privacy (server/quality.py).
    quality.rate_template(session, campaign.template_id, now_ms, act=policy.template_quality)
    tiers.rate_business(session, campaign.business, now_ms)
    session.commit()
    return True


def _release(
    session: Session,
    campaign: Campaign,
    exact: dict[str, int],
    sent: int,
    policy: FiguresPolicy,
    now_ms: int,
    epsilon: float,
) -> CampaignFigures:
    keys = ["delivered", *REFUSAL_CLASSES, "not_delivered"]
    _, by_value = tally_of(session, campaign.id)
    tally = [by_value[v] for v in _TALLIED]
    if sent:
        counts = noise.noisy_counts(
            [exact[k] for k in keys], OUTCOME_SENSITIVITY, policy.epsilon_counts
        )
        reports = noise.noisy_counts(tally, TALLY_SENSITIVITY, policy.epsilon_interactions)
        count_scale = noise.scale_for(OUTCOME_SENSITIVITY, policy.epsilon_counts)
        tally_scale = noise.scale_for(TALLY_SENSITIVITY, policy.epsilon_interactions)
    else:  # nothing was sent: no person is in these figures, so there is nothing to hide
        counts, reports, count_scale, tally_scale = [0] * len(keys), tally, 0.0, 0.0

    def noisy(value: int, terms: int, scale: float) -> NoisyCount:
        return NoisyCount(value=value, margin=noise.sum_margin(scale, terms) if scale else 0)

    by_key = dict(zip(keys, counts, strict=True))
    refused = sum(by_key[r] for r in REFUSAL_CLASSES)
    undelivered = max(0, refused + by_key["not_delivered"])
    rebate_amount = min(campaign.spent, undelivered * campaign.spent // sent) if sent else 0
    return CampaignFigures(
        published_at=now_ms,
        epsilon=epsilon,
        delivered=noisy(by_key["delivered"], 1, count_scale),
        refused=noisy(refused, len(REFUSAL_CLASSES), count_scale),
        refused_by_reason={r: noisy(by_key[r], 1, count_scale) for r in REFUSAL_CLASSES},
        not_delivered=noisy(by_key["not_delivered"], 1, count_scale),
        signal_reports=noisy(sum(reports), len(_TALLIED), tally_scale),
        no_signal=noisy(reports[0], 1, tally_scale),
        interactions=_estimates(reports, tally_scale),
        rebate=max(0, rebate_amount),
    )


def _estimates(reports: list[int], scale: float) -> dict[str, Estimate]:
    """Unbiased estimates of how many people had each outcome, from the noisy tallies.

    Each report's outcome went through k-ary randomized response on the device, and each of
    the relay's tallies got discrete Laplace noise of ``scale``: shared.signals.estimate
    stays unbiased, and its interval holds both noises. Not clipped: clipping would bias
    rare outcomes upwards.
    """
    counts = dict(zip(_TALLIED, reports, strict=True))
    central = noise.variance(scale) if scale else 0.0
    found = estimate(counts, central_variance=central)
    return {
        outcome: Estimate(value=round(e.value, 1), low=round(e.low, 1), high=round(e.high, 1))
        for outcome, e in found.items()
    }
