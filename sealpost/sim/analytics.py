"""Campaign analytics as businesses see them, set against the truth only the simulation knows.

The relay debiases anonymous reports assuming the production epsilon (ln 3 per bit). When a
run sets another epsilon on its devices, the relay's published figures are debiased with the
wrong keep-probability; on the simulation's own relay the figures are then recomputed from the
relay's raw tallies, exactly as the relay would with the right one (``shared.signals.publish``,
the same k), and marked so.
"""

import math
from typing import Any

from sealpost.sim.played import Played
from shared.api import INTERACTIONS
from shared.signals import DEFAULT_EPSILON_PER_BIT, keep_probability, published_figures


def debiased_by_relay(played: Played) -> bool:
    """True when the relay's own figures hold (the devices used the production epsilon)."""
    return math.isclose(played.plan.options.epsilon, DEFAULT_EPSILON_PER_BIT)


def business_figures(played: Played) -> dict[str, dict[str, Any]]:
    """Per campaign id, the report a business gets (as JSON), with interaction figures
    recomputed from the relay's tallies when the devices used another epsilon."""
    published = {cid: report.model_dump(mode="json") for cid, report in played.reports.items()}
    if debiased_by_relay(played) or played.tallies is None:
        return published
    p = keep_probability(played.plan.options.epsilon)
    k = played.plan.options.effective_k
    for cid, (n, ones) in played.tallies.items():
        figures, intervals = published_figures(ones, n, p, k, INTERACTIONS)
        published[cid].update(interactions=figures, interaction_intervals=intervals)
    return published


def estimate_rows(played: Played, published: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per campaign and interaction: reports, true count, estimate, 95% interval."""
    rows = []
    for label, cid in played.campaign_ids.items():
        report = published[cid]
        truth = played.true_counts.get(cid, {})
        n = report["signal_reports"]
        for event in INTERACTIONS:
            value = report["interactions"].get(event)
            interval = report["interaction_intervals"].get(event)
            true = truth.get(event, 0)
            rows.append(
                {
                    "campaign": label,
                    "event": event,
                    "reports": n,
                    "true": true,
                    "estimate": value,
                    "low": interval[0] if interval else None,
                    "high": interval[1] if interval else None,
                    "covered": interval[0] <= true <= interval[1] if interval else None,
                    "error_pct": round(100 * abs(value - true) / n, 2)
                    if value is not None and n
                    else None,
                }
            )
    return rows


def estimate_overview(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How close the published figures came: coverage and error in points of the reports."""
    shown = [r for r in rows if r["estimate"] is not None]
    errors = [r["error_pct"] for r in shown if r["error_pct"] is not None]
    return {
        "figures": len(rows),
        "published": len(shown),
        "suppressed_below_k": len(rows) - len(shown),
        "covered_by_95pct_interval": sum(bool(r["covered"]) for r in shown),
        "mean_abs_error_pct": round(sum(errors) / len(errors), 2) if errors else None,
        "worst_abs_error_pct": max(errors) if errors else None,
    }
