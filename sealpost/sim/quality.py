"""What the relay's quality system did in a simulated run, and what it changed.

Per business: what it was told of its quality each simulated day (its rating and tier, its
template's rating, pauses and whether it was disabled: ``GET /v1/quality``), the campaigns
the relay refused to open for it, how many people its marketing reached, and how much of it
was unwanted. Unwanted marketing is counted two ways: the truth only the simulation knows
(copies delivered whose person dismissed them, and those whose person turned away in any
way: dismissed, stopped its promotions, blocked or reported it), and the relay's private
estimate, the published ``dismissed`` figures with their 95 % intervals, set against the true
count among the same campaigns' reports that carried an outcome.

:func:`compare` sets a run with the quality system against the same seed without it
(``sealpost sim --compare-quality``): a spammy business's reach should fall by at least
half, and welcome businesses should keep at least 95 % of theirs.
"""

import math
from collections import Counter
from typing import Any

from sealpost.sim.played import Played
from sealpost.sim.population import outcome_of_actions

TURNED_AWAY = frozenset({"dismissed", "stopped_promotions", "blocked", "reported"})
SPAMMY_REACH_AT_MOST = 0.5  # of its reach without the quality system
WELCOME_REACH_AT_LEAST = 0.95


def quality_summary(played: Played) -> dict[str, Any]:
    """Per business and in total: ratings over the days, refusals, reach, unwanted."""
    label_of = {cid: label for label, cid in played.campaign_ids.items()}
    reach: Counter[str] = Counter()
    dismissed: Counter[str] = Counter()
    turned_away: Counter[str] = Counter()
    for stored in played.log.stored.values():
        label = label_of.get(stored.campaign_id or "")
        if label is None:
            continue
        business = played.plan.campaign(label).business
        actions = played.plan.behaviour[(stored.handle, label)]
        reach[business] += 1
        dismissed[business] += outcome_of_actions(actions) == "dismissed"
        turned_away[business] += bool(TURNED_AWAY.intersection(actions))
    businesses: dict[str, Any] = {}
    for business in played.plan.businesses:
        planned = [c for c in played.plan.campaigns if c.business == business.handle]
        refused = Counter(
            played.refused_campaigns[c.label]
            for c in planned
            if c.label in played.refused_campaigns
        )
        days = list(played.quality_days.get(business.label, []))
        businesses[business.label] = {
            "kind": business.kind,
            "campaigns_planned": len(planned),
            "campaigns_opened": sum(c.label in played.campaign_ids for c in planned),
            "campaigns_refused": dict(sorted(refused.items())),
            "reach": reach[business.handle],
            "unwanted": {
                "dismissed_true": dismissed[business.handle],
                "turned_away_true": turned_away[business.handle],
                "dismissed_published": _published_dismissed(played, planned),
            },
            "rating": days[-1]["rating"] if days else None,
            "tier": days[-1]["tier"] if days else None,
            "template_rating": days[-1]["template_rating"] if days else None,
            "lows": days[-1]["lows"] if days else 0,
            "disabled": bool(days and days[-1]["disabled"]),
            "days": days,
        }
    return {
        "enforced": played.relay_settings.template_quality if played.relay_settings else None,
        "businesses": businesses,
        "unwanted": {
            kind: {
                "reach": sum(b["reach"] for b in businesses.values() if b["kind"] == kind),
                "dismissed_true": sum(
                    b["unwanted"]["dismissed_true"]
                    for b in businesses.values()
                    if b["kind"] == kind
                ),
                "turned_away_true": sum(
                    b["unwanted"]["turned_away_true"]
                    for b in businesses.values()
                    if b["kind"] == kind
                ),
            }
            for kind in ("spammy", "welcome")
        },
    }


def _published_dismissed(played: Played, planned: list[Any]) -> dict[str, Any]:
    """The published ``dismissed`` estimates of these campaigns, summed, with a 95 % interval
    (the campaigns' noise is independent: their half-widths add in quadrature), and the true
    count among the same campaigns' reports that carried an outcome."""
    estimate = variance = 0.0
    true = published = 0
    for campaign in planned:
        cid = played.campaign_ids.get(campaign.label)
        report = played.reports.get(cid or "")
        if report is None or report.figures is None:
            continue
        found = report.figures.interactions.get("dismissed")
        if found is None:
            continue
        published += 1
        estimate += found.value
        variance += ((found.high - found.low) / 2) ** 2
        true += played.true_counts.get(cid or "", {}).get("dismissed", 0)
    half = math.sqrt(variance)
    low, high = estimate - half, estimate + half
    return {
        "campaigns": published,
        "estimate": round(estimate, 1),
        "low": round(low, 1),
        "high": round(high, 1),
        "true": true,
        "covered": low <= true <= high if published else None,
    }


def compare(with_quality: dict[str, Any], without: dict[str, Any]) -> dict[str, Any]:
    """Two runs' ``quality`` summaries of the same seed: reach and unwanted marketing per
    business with the quality system and without, and whether the claims hold."""
    rows = {}
    for label, on in with_quality["businesses"].items():
        off = without["businesses"][label]
        ratio = on["reach"] / off["reach"] if off["reach"] else None
        holds = (
            None
            if ratio is None
            else ratio <= SPAMMY_REACH_AT_MOST
            if on["kind"] == "spammy"
            else ratio >= WELCOME_REACH_AT_LEAST
        )
        rows[label] = {
            "kind": on["kind"],
            "reach_with": on["reach"],
            "reach_without": off["reach"],
            "reach_ratio": round(ratio, 3) if ratio is not None else None,
            "dismissed_with": on["unwanted"]["dismissed_true"],
            "dismissed_without": off["unwanted"]["dismissed_true"],
            "turned_away_with": on["unwanted"]["turned_away_true"],
            "turned_away_without": off["unwanted"]["turned_away_true"],
            "campaigns_refused_with": sum(on["campaigns_refused"].values()),
            "holds": holds,
        }
    return {
        "claims": {
            "spammy_reach_at_most": SPAMMY_REACH_AT_MOST,
            "welcome_reach_at_least": WELCOME_REACH_AT_LEAST,
            "hold": all(r["holds"] is not False for r in rows.values()),
        },
        "businesses": rows,
        "unwanted": {
            "with": with_quality["unwanted"],
            "without": without["unwanted"],
        },
    }


def render(quality: dict[str, Any]) -> list[str]:
    """The summary's lines about quality: per business, its ratings and what they did."""
    enforced = quality["enforced"]
    lines = [
        "quality: "
        + (
            "ratings acted on (pauses, disables)"
            if enforced
            else "ratings computed, not acted on (--no-quality)"
            if enforced is False
            else "as the relay's operator set it"
        )
    ]
    for label, b in quality["businesses"].items():
        refused = ", ".join(f"{n} {code}" for code, n in b["campaigns_refused"].items())
        lines.append(
            f"  {label} ({b['kind']}): template {b['template_rating'] or '-'}"
            + (" (disabled)" if b["disabled"] else f", {b['lows']} fall(s) to low")
            + f"; business {b['rating'] or '-'}, tier {b['tier'] or '-'}; campaigns "
            f"{b['campaigns_opened']}/{b['campaigns_planned']} opened"
            + (f" ({refused} refused)" if refused else "")
            + f"; reached {b['reach']:,}"
        )
        ratings = " ".join(_day_mark(d) for d in b["days"])
        if ratings:
            lines.append(f"    by day: {ratings}")
        unwanted = b["unwanted"]
        published = unwanted["dismissed_published"]
        line = (
            f"    unwanted: {unwanted['dismissed_true']:,} dismissed, "
            f"{unwanted['turned_away_true']:,} turned away (truth)"
        )
        if published["campaigns"]:
            line += (
                f"; published estimate of dismissed over {published['campaigns']} campaign(s) "
                f"{published['estimate']:,.0f} [{published['low']:,.0f}, "
                f"{published['high']:,.0f}] vs true {published['true']:,}"
            )
        lines.append(line)
    return lines


def _day_mark(day: dict[str, Any]) -> str:
    """``d3:low/paused`` for one day's state of a business's template."""
    state = day["template_rating"] or "-"
    if day["disabled"]:
        state += "/disabled"
    elif day["paused_until"] is not None:
        state += "/paused"
    return f"d{day['day']}:{state}"


def render_comparison(comparison: dict[str, Any]) -> list[str]:
    lines = ["with the quality system and without it (same seed):"]
    for label, row in comparison["businesses"].items():
        ratio = row["reach_ratio"]
        lines.append(
            f"  {label} ({row['kind']}): reached {row['reach_with']:,} with, "
            f"{row['reach_without']:,} without"
            + (f" ({ratio:.0%})" if ratio is not None else "")
            + f"; dismissed {row['dismissed_with']:,} with, {row['dismissed_without']:,} "
            "without" + ("" if row["holds"] is not False else "  <- claim does not hold")
        )
    claims = comparison["claims"]
    lines.append(
        f"  claims (spammy reach at most {claims['spammy_reach_at_most']:.0%}, welcome at "
        f"least {claims['welcome_reach_at_least']:.0%}): "
        + ("hold" if claims["hold"] else "DO NOT HOLD")
    )
    return lines
