"""Template quality: what people's choices say about a template, and what follows from it.

A template's rating (high, medium, low) is read off the figures its campaigns published in
the last ``WINDOW_MS``, and nothing else: the copies people's blocks and promotion stops
refused, and the people estimated to have dismissed a copy, against the copies that reached
people or were refused so. Those figures already carry the relay's noise and were already
charged to the business's privacy budget (server/figures.py), so a rating is post-processing:
it costs no privacy and tells the business nothing its figures did not.

The share of unwelcome answers is taken with its interval (the figures' margins added up, the
bounds taken the pessimistic way round), and a rating moves only when the whole interval says
so: to low when even its lower bound is above ``LOW_ABOVE``, to high when even its upper bound
is below ``HIGH_BELOW``, back to medium when the interval leaves the band it was in. A few
small campaigns, whose figures are mostly noise, move nothing.

A template that falls to low is paused: new campaigns with it are refused for ``PAUSES[0]``
the first time, ``PAUSES[1]`` the second; the third time it is disabled for good. WhatsApp
Business pauses a template whose quality falls for 3 hours, then 6, then disables it.
"""

import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session, col, select

from server.errors import ApiError
from server.models import Campaign, PublishedFigures, Template, TemplateQuality
from server.sql_lists import one_of
from shared.api import CampaignFigures, TemplateQualityView

Rating = Literal["high", "medium", "low"]
HOUR_MS = 3_600_000
WINDOW_MS = 7 * 24 * HOUR_MS
LOW_ABOVE = 0.20
HIGH_BELOW = 0.05
PAUSES = (3 * HOUR_MS, 6 * HOUR_MS)  # then disabled
_Z95 = 1.96


@dataclass(frozen=True)
class Share:
    """Unwelcome answers over the people a template's copies reached or were refused by."""

    value: float
    low: float
    high: float
    campaigns: int


def unwelcome_share(figures: list[CampaignFigures]) -> Share | None:
    """From published figures only; None when there is nothing to go on."""
    if not figures:
        return None
    negative = people = 0.0
    negative_var = people_var = 0.0
    for f in figures:
        refused = [f.refused_by_reason.get(r) for r in ("blocked", "stopped_promotions")]
        dismissed = f.interactions.get("dismissed")
        for count in (*refused, f.delivered):
            if count is None:
                continue
            var = (count.margin / _Z95) ** 2
            people += count.value
            people_var += var
            if count is not f.delivered:
                negative += count.value
                negative_var += var
        if dismissed is not None:
            negative += dismissed.value
            negative_var += ((dismissed.high - dismissed.low) / 2 / _Z95) ** 2
    neg_half, people_half = _Z95 * math.sqrt(negative_var), _Z95 * math.sqrt(people_var)
    low_people = people - people_half
    if low_people <= 0:  # the figures cannot even say whether anyone was reached
        return Share(0.0, 0.0, 1.0, len(figures))
    value = min(max(negative / max(people, 1e-9), 0.0), 1.0)
    low = max((negative - neg_half) / (people + people_half), 0.0)
    high = min((negative + neg_half) / low_people, 1.0)
    return Share(value, low, high, len(figures))


def next_rating(current: Rating, share: Share | None) -> Rating:
    """Move only when the whole interval is on the other side of a threshold."""
    if share is None:
        return current
    if share.low > LOW_ABOVE:
        return "low"
    if share.high < HIGH_BELOW:
        return "high"
    if current == "low" and share.high < LOW_ABOVE:
        return "medium"
    if current == "high" and share.low > HIGH_BELOW:
        return "medium"
    return current


def _recent_figures(session: Session, template_id: str, now_ms: int) -> list[CampaignFigures]:
    rows = session.exec(
        select(PublishedFigures.body)
        .join(Campaign, col(Campaign.id) == col(PublishedFigures.campaign_id))
        .where(
            Campaign.template_id == template_id,
            col(PublishedFigures.published_at) > now_ms - WINDOW_MS,
        )
    )
    return [CampaignFigures.model_validate(json.loads(body)) for body in rows]


def rate_template(
    session: Session, template_id: str, now_ms: int, act: bool = True
) -> TemplateQuality:
    """Recompute ``template_id``'s rating from its recent figures, in the caller's
    transaction, pausing or disabling it when it falls to low (unless ``act`` is false:
    the relay's operator turned the consequences off, and only the rating moves)."""
    quality = session.get(TemplateQuality, template_id)
    if quality is None:
        quality = TemplateQuality(template_id=template_id, rating="medium", updated_at=now_ms)
    share = unwelcome_share(_recent_figures(session, template_id, now_ms))
    rating = next_rating(quality.rating, share)  # type: ignore[arg-type]
    # A fall: to low from above, or still low once its pause is over (its next campaign did
    # no better), as WhatsApp pauses again rather than let a paused template simply resume.
    over = quality.paused_until is not None and quality.paused_until <= now_ms
    fell = quality.rating != "low" or over
    if act and rating == "low" and not quality.disabled and fell:
        quality.lows += 1
        if quality.lows > len(PAUSES):
            quality.disabled = True
        else:
            quality.paused_until = now_ms + PAUSES[quality.lows - 1]
    quality.rating = rating
    if share is not None:
        quality.share = round(share.value, 4)
        quality.share_low, quality.share_high = round(share.low, 4), round(share.high, 4)
        quality.campaigns = share.campaigns
    quality.updated_at = now_ms
    session.add(quality)
    return quality


def _why(quality: TemplateQuality) -> str:
    """The figures behind a rating, in the business's words (its note and its refusals)."""
    return (
        f"{quality.share_low:.0%} to {quality.share_high:.0%} of the people its campaigns of "
        f"the last 7 days reached ({quality.campaigns}) blocked you, stopped your promotions or "
        "dismissed it"
    )


def view(session: Session, template: Template, now_ms: int) -> TemplateQualityView:
    """What the business is shown of one template's quality."""
    found = session.get(TemplateQuality, template.id)
    if found is None:
        found = TemplateQuality(template_id=template.id, rating="medium", updated_at=now_ms)
    why = _why(found)
    if found.disabled:
        note = f"disabled: its quality fell to low {found.lows} times; lately {why}"
    elif found.paused_until is not None and now_ms < found.paused_until:
        minutes = -(-(found.paused_until - now_ms) // 60_000)
        note = f"paused for {minutes} more minute(s): its quality fell to low; {why}"
    elif found.campaigns == 0:
        note = "no published figures yet: rated medium until they say otherwise"
    else:
        note = f"{found.rating}: {why}"
    return TemplateQualityView(
        template_id=template.id,
        name=template.name,
        rating=found.rating,  # type: ignore[arg-type]
        share=found.share,
        share_low=found.share_low,
        share_high=found.share_high,
        campaigns=found.campaigns,
        lows=found.lows,
        paused_until=found.paused_until,
        disabled=found.disabled,
        note=note,
    )


def unusable(
    session: Session, template_ids: Collection[str], now_ms: int
) -> dict[str, tuple[str, str]]:
    """Per template among these that is paused or disabled now: its error code and a message
    saying why and until when. New campaigns and new copies of one are refused."""
    if not template_ids:
        return {}
    found = session.exec(
        select(TemplateQuality).where(one_of(col(TemplateQuality.template_id), list(template_ids)))
    )
    return {q.template_id: why for q in found if (why := _unusable(q, now_ms)) is not None}


def _unusable(quality: TemplateQuality, now_ms: int) -> tuple[str, str] | None:
    template_id = quality.template_id
    why = _why(quality)
    if quality.disabled:
        return (
            "template_disabled",
            f"Template {template_id} is disabled: its quality fell to low {quality.lows} times "
            f"({why}). Register a new template people want to receive.",
        )
    if quality.paused_until is not None and now_ms < quality.paused_until:
        minutes = -(-(quality.paused_until - now_ms) // 60_000)
        return (
            "template_paused",
            f"Template {template_id} is paused for {minutes} more minute(s): its quality fell to "
            f"low ({why}). A third fall disables it.",
        )
    return None


def require_usable(session: Session, template_id: str, now_ms: int) -> None:
    """Refuse a new campaign with a paused or disabled template, saying why and until when."""
    if (why := unusable(session, [template_id], now_ms).get(template_id)) is not None:
        raise ApiError(403, *why)


def paused_campaigns(
    session: Session, campaign_ids: Collection[str], now_ms: int
) -> dict[str, int]:
    """Per campaign among these whose template is paused now: when the pause ends. The
    dispatcher holds their due copies until then."""
    if not campaign_ids:
        return {}
    return {
        campaign_id: until
        for campaign_id, until in session.execute(
            select(Campaign.id, TemplateQuality.paused_until)
            .join(TemplateQuality, col(TemplateQuality.template_id) == col(Campaign.template_id))
            .where(
                one_of(col(Campaign.id), list(campaign_ids)),
                col(TemplateQuality.paused_until) > now_ms,
                col(TemplateQuality.disabled).is_(False),
            )
        )
    }
