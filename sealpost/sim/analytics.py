"""Campaign figures as businesses see them, set against the truth only the simulation knows.

A business learns what people did with its campaign once, from the figures the relay
publishes at the campaign's figures_at, with noise: its interaction estimates carry both the
devices' randomized response and the relay's central noise. Those published estimates are
what is compared with the truth here (the true counts among the people who reported).

The relay debiases assuming the production epsilon (ln 3 per bit). When a run sets another
epsilon on its devices, the published estimates are debiased again with the devices'
keep-probability (``sealpost.sim.estimator.redebias``): the same noisy release, with the
right last step, and marked so.
"""

import math
from typing import Any

from sealpost.sim.estimator import DEFAULT_CENTRAL_EPSILON, central_variance, redebias
from sealpost.sim.played import Played
from shared.api import INTERACTIONS
from shared.signals import DEFAULT_EPSILON_PER_BIT, keep_probability


def debiased_by_relay(played: Played) -> bool:
    """True when the relay's own figures hold (the devices used the production epsilon)."""
    return math.isclose(played.plan.options.epsilon, DEFAULT_EPSILON_PER_BIT)


def _central_epsilon(played: Played) -> float:
    """The ε of the relay's noise on the interaction tallies: the own relay's setting, or the
    relay's default for an existing one."""
    settings = played.relay_settings
    return settings.figures_epsilon_interactions if settings else DEFAULT_CENTRAL_EPSILON


def business_figures(played: Played) -> dict[str, dict[str, Any]]:
    """Per campaign id, the report a business got (as JSON), with its published interaction
    estimates debiased again with the devices' epsilon when that is not the relay's."""
    published = {cid: report.model_dump(mode="json") for cid, report in played.reports.items()}
    if debiased_by_relay(played):
        return published
    p = keep_probability(played.plan.options.epsilon)
    central = central_variance(_central_epsilon(played))
    for report in published.values():
        figures = report["figures"]
        if figures is None:
            continue
        n = figures["signal_reports"]["value"]
        for event, found in figures["interactions"].items():
            again = redebias(found["value"], n, p, central)
            figures["interactions"][event] = {
                "value": round(again.value, 1),
                "low": round(again.low, 1),
                "high": round(again.high, 1),
            }
    return published


def estimate_rows(played: Played, published: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per campaign and interaction: reports sent, the count the business was shown,
    true count, published estimate, its 95% interval, and its error."""
    rows = []
    for label, cid in played.campaign_ids.items():
        report = published[cid]
        figures = report["figures"]
        truth = played.true_counts.get(cid, {})
        n = played.reporters.get(cid, 0)  # exactly: the devices' own records
        for event in INTERACTIONS:
            found = figures["interactions"].get(event) if figures else None
            true = truth.get(event, 0)
            error = abs(found["value"] - true) if found else None
            rows.append(
                {
                    "campaign": label,
                    "status": report["status"],
                    "event": event,
                    "reports": n,
                    "published_reports": figures["signal_reports"]["value"] if figures else None,
                    "true": true,
                    "estimate": found["value"] if found else None,
                    "low": found["low"] if found else None,
                    "high": found["high"] if found else None,
                    "covered": found["low"] <= true <= found["high"] if found else None,
                    "error": round(error, 1) if error is not None else None,
                    "error_pct": round(100 * error / n, 2) if error is not None and n else None,
                }
            )
    return rows


def estimate_overview(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How close the published figures came: coverage, error in people and in points of the
    campaign's reports, and how wide the intervals were."""
    shown = [r for r in rows if r["estimate"] is not None]
    errors = [r["error"] for r in shown]
    shares = [r["error_pct"] for r in shown if r["error_pct"] is not None]
    halves = [(r["high"] - r["low"]) / 2 for r in shown]
    return {
        "figures": len(rows),
        "published": len(shown),
        "unpublished": len(rows) - len(shown),
        "covered_by_95pct_interval": sum(bool(r["covered"]) for r in shown),
        "mean_abs_error": round(sum(errors) / len(errors), 1) if errors else None,
        "mean_abs_error_pct": round(sum(shares) / len(shares), 2) if shares else None,
        "worst_abs_error_pct": max(shares) if shares else None,
        "mean_ci95_half_width": round(sum(halves) / len(halves), 1) if halves else None,
    }
