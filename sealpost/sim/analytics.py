"""Campaign figures as businesses see them, set against the truth only the simulation knows.

A business learns what people did with its campaign once, from the figures the relay
publishes at the campaign's figures_at, with noise: its estimate of each outcome (not_read,
read, clicked, dismissed) carries both the devices' k-ary randomized response and the
relay's central noise, and is about the reports that carry an outcome (the ``no_signal``
ones, from devices with signals off or their budget spent, are counted apart). Those
published estimates are what is compared with the truth here: the true outcomes among the
people whose report carried one, as their devices decided.
"""

from typing import Any

from sealpost.sim.played import Played
from shared.signals import NO_SIGNAL, OUTCOMES


def business_figures(played: Played) -> dict[str, dict[str, Any]]:
    """Per campaign id, the report a business got (as JSON), with its figures once out."""
    return {cid: report.model_dump(mode="json") for cid, report in played.reports.items()}


def estimate_rows(played: Played, published: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per campaign and outcome: reports sent (all, and with an outcome), the counts
    the business was shown, true count, published estimate, its 95% interval, its error."""
    rows = []
    for label, cid in played.campaign_ids.items():
        report = published[cid]
        figures = report["figures"]
        truth = played.true_counts.get(cid, {})
        n = played.reporters.get(cid, 0)  # exactly: the devices' own records
        with_signal = n - truth.get(NO_SIGNAL, 0)
        for outcome in OUTCOMES:
            found = figures["interactions"].get(outcome) if figures else None
            true = truth.get(outcome, 0)
            error = abs(found["value"] - true) if found else None
            rows.append(
                {
                    "campaign": label,
                    "status": report["status"],
                    "outcome": outcome,
                    "reports": n,
                    "signal_reports": with_signal,
                    "published_reports": figures["signal_reports"]["value"] if figures else None,
                    "published_no_signal": figures["no_signal"]["value"] if figures else None,
                    "true": true,
                    "estimate": found["value"] if found else None,
                    "low": found["low"] if found else None,
                    "high": found["high"] if found else None,
                    "covered": found["low"] <= true <= found["high"] if found else None,
                    "error": round(error, 1) if error is not None else None,
                    "error_pct": (
                        round(100 * error / with_signal, 2)
                        if error is not None and with_signal
                        else None
                    ),
                }
            )
    return rows


def estimate_overview(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How close the published figures came: coverage, error in people and in points of the
    campaign's reports with an outcome, and how wide the intervals were."""
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
