"""Marketing tiers: how many people a business's marketing may reach in 24 hours.

A business starts at the first tier. Its limit grows one tier when the quality of its recent
campaigns holds (not low, server/quality.py) and it used at least half its limit in the last
7 days; it falls one tier when that quality is low. Moves happen when a campaign's figures are
published, at most one up a day, read off the same published figures as template ratings (no
privacy spent). The limit counts the copies of the business's marketing campaigns created in
the last 24 hours (a person in two campaigns counts twice: stricter than WhatsApp's unique
people, and countable without knowing who was in which audience).

WhatsApp Business's tiers are the same numbers: 250, 1,000, 10,000, 100,000, then unlimited.
Enforced only where the relay's operator turns them on (``marketing_tiers``): a simulator is
run at all scales, and a business's first campaign of thousands is a common test.
"""

import json

from sqlalchemy import func
from sqlmodel import Session, col, select

from server.errors import ApiError
from server.models import BusinessTier, Campaign, PublishedFigures
from server.quality import WINDOW_MS, Rating, next_rating, unwelcome_share
from shared.api import BusinessQualityView, CampaignFigures

DAY_MS = 86_400_000
TIERS: tuple[int | None, ...] = (250, 1000, 10_000, 100_000, None)  # None: unlimited


def limit_of(tier: int) -> int | None:
    return TIERS[min(max(tier, 0), len(TIERS) - 1)]


def state(session: Session, business: str) -> BusinessTier:
    return session.get(BusinessTier, business) or BusinessTier(business=business)


def marketing_reach(session: Session, business: str, since_ms: int) -> int:
    """Copies of the business's marketing campaigns created since ``since_ms``."""
    return int(
        session.exec(
            select(func.coalesce(func.sum(Campaign.targeted), 0)).where(
                Campaign.business == business,
                Campaign.category == "marketing",
                col(Campaign.created_at) > since_ms,
                col(Campaign.cancelled).is_(False),
            )
        ).one()
    )


def require_room(session: Session, business: str, size: int, now_ms: int) -> None:
    """Refuse a marketing campaign that would take the business past its tier's limit."""
    found = state(session, business)
    limit = limit_of(found.tier)
    if limit is None:
        return
    used = marketing_reach(session, business, now_ms - DAY_MS)
    if used + size > limit:
        raise ApiError(
            403,
            "tier_limit",
            f"Your marketing may reach {limit:,} people in 24 hours (tier {found.tier + 1} of "
            f"{len(TIERS)}); campaigns of the last 24 hours already target {used:,}, so these "
            f"{size:,} do not fit. Send fewer, or later. The limit grows when your campaigns' "
            "quality holds and you use at least half of it in a week.",
        )


def rate_business(session: Session, business: str, now_ms: int) -> BusinessTier:
    """After a publication: the business's overall rating, and a tier move if it earned one."""
    found = state(session, business)
    bodies = session.exec(
        select(PublishedFigures.body)
        .join(Campaign, col(Campaign.id) == col(PublishedFigures.campaign_id))
        .where(
            Campaign.business == business,
            col(PublishedFigures.published_at) > now_ms - WINDOW_MS,
        )
    )
    share = unwelcome_share([CampaignFigures.model_validate(json.loads(b)) for b in bodies])
    rating: Rating = next_rating(found.rating, share)  # type: ignore[arg-type]
    found.rating = rating
    limit = limit_of(found.tier)
    if rating == "low" and found.tier > 0:
        found.tier -= 1
        found.moved_at, found.reason = now_ms, "down: its campaigns' quality fell to low"
    elif (
        rating != "low"
        and limit is not None
        and now_ms - found.moved_at >= DAY_MS
        and marketing_reach(session, business, now_ms - 7 * DAY_MS) * 2 >= limit
    ):
        found.tier += 1
        found.moved_at, found.reason = now_ms, "up: quality held and it used half its limit"
    session.add(found)
    return found


def view(session: Session, business: str, now_ms: int, *, enforced: bool) -> BusinessQualityView:
    """What the business is shown of its tier."""
    found = state(session, business)
    limit = limit_of(found.tier)
    used = marketing_reach(session, business, now_ms - DAY_MS)
    reach = "no limit" if limit is None else f"{limit:,} people per 24 hours"
    note = f"{found.rating}; tier {found.tier + 1} of {len(TIERS)}: {reach}"
    if found.reason:
        note += f" ({found.reason})"
    if not enforced:
        note += "; this relay does not apply tier limits"
    return BusinessQualityView(
        rating=found.rating,  # type: ignore[arg-type]
        tier=found.tier + 1,
        limit_24h=limit,
        used_24h=used,
        enforced=enforced,
        note=note,
    )
