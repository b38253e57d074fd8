"""Interaction signals, estimated as the relay publishes them: error against epsilon, and
how often the published 95% intervals hold the truth.

Each simulated recipient's true outcome (not_read, read, clicked, dismissed) goes through
k-ary randomized response exactly as the client does (``shared.signals.randomize``), except
for a share of devices whose budget is spent: those send ``no_signal`` (not randomized,
counted apart). The relay's estimate is ``shared.signals.estimate`` on the tallies, among the
reports that carry an outcome; the truth it is compared with is the outcomes of those people.

- ``outcomes``: one campaign of 10,000 recipients at the protocol's epsilon (ln 3 a report),
  randomized response alone: each outcome's estimate, interval and error (errors and
  widths in % of the reports that carry an outcome, the estimates' own base). The floor is
  the error with no noise at all (zero). ``published``: the same tallies with the relay's
  central noise (server/noise.py, OpenDP's discrete Laplace, at the relay's tally
  sensitivity and default epsilon for interactions), estimated as server/figures.py does.
- ``by_epsilon``: mean error and interval width for a few epsilons around ln 3, over several
  seeded campaigns, with randomized response alone and as published.
- ``coverage`` (the target): over hundreds of seeded campaigns of three sizes, each with its
  budget-spent share, the published 95% intervals (both noises) must hold the true count 93
  to 97% of the time: an estimator that is biased, or an interval too narrow or too wide,
  misses that band. The central noise is OpenDP's, not seeded, so the figure moves a little
  from run to run (its standard error is reported; the band is about four of them).
"""

import math
import random
import statistics
import time
from collections import Counter
from typing import Any

from sealpost.sim.estimator import DEFAULT_CENTRAL_EPSILON
from server import noise
from server.figures import TALLY_SENSITIVITY
from shared.signals import (
    DEFAULT_REPORT_EPSILON,
    NO_SIGNAL,
    OUTCOMES,
    REPORT_VALUES,
    Estimate,
    Outcome,
    ReportValue,
    estimate,
    randomize,
    tally,
    truth_probability,
)

# Plausible shares of a marketing campaign's outcomes (clicked beats dismissed beats read).
TRUE_SHARES: dict[Outcome, float] = {
    "not_read": 0.35,
    "read": 0.37,
    "clicked": 0.08,
    "dismissed": 0.20,
}
# Devices whose budget is spent (daily, 30-day or per-business cap): they send no_signal.
BUDGET_SPENT_SHARE = 0.08
EPSILONS = (0.5, 0.8, DEFAULT_REPORT_EPSILON, 1.5, 2.0)
EPSILON_TRIALS = 20
COVERAGE_SIZES = (200, 1_000, 5_000)
COVERAGE_SEEDS = 300  # campaigns per size, each on a seed of its own
TARGET_COVERAGE = (0.93, 0.97)


def _audience(rng: random.Random, size: int) -> list[ReportValue]:
    """What each of ``size`` devices truly has to report: no_signal (budget spent), else the
    person's outcome."""
    outcomes, shares = zip(*TRUE_SHARES.items(), strict=True)
    cumulative = [sum(shares[: i + 1]) for i in range(len(shares))]
    return [
        NO_SIGNAL
        if rng.random() < BUDGET_SPENT_SHARE
        else rng.choices(outcomes, cum_weights=cumulative)[0]
        for _ in range(size)
    ]


def _reports(truth: list[ReportValue], epsilon: float, rng: random.Random) -> dict[str, int]:
    """The tallies of the reports the devices send: each outcome randomized as the client
    does, no_signal as it is."""
    return tally(
        value if value == NO_SIGNAL else randomize(value, epsilon, rng)  # type: ignore[arg-type]
        for value in truth
    )


def _published(counts: dict[str, int], epsilon: float) -> tuple[dict[Outcome, Estimate], int]:
    """The relay's estimates from ``counts`` with its central noise (server/figures.py):
    every tally noised once by OpenDP, estimates with both noises' variance; and the
    published no_signal count."""
    central = DEFAULT_CENTRAL_EPSILON
    noisy = noise.noisy_counts([counts[v] for v in REPORT_VALUES], TALLY_SENSITIVITY, central)
    shown = dict(zip(REPORT_VALUES, noisy, strict=True))
    variance = noise.variance(noise.scale_for(TALLY_SENSITIVITY, central))
    return estimate(shown, epsilon, central_variance=variance), shown[NO_SIGNAL]


def _campaign(
    seed: str, size: int, epsilon: float
) -> tuple[Counter[str], dict[Outcome, Estimate], dict[Outcome, Estimate], int]:
    """One seeded campaign: the truth, the estimates from randomized response alone and as
    published, and the published no_signal count."""
    rng = random.Random(seed)
    truth = _audience(rng, size)
    counts = _reports(truth, epsilon, rng)
    alone = estimate(counts, epsilon)
    published, no_signal = _published(counts, epsilon)
    return Counter(truth), alone, published, no_signal


def _errors_pct(found: dict[Outcome, Estimate], truth: Counter[str], n: int) -> list[float]:
    return [100 * abs(found[o].value - truth[o]) / n for o in OUTCOMES] if n else []


def _half_pct(found: dict[Outcome, Estimate], n: int) -> float:
    return statistics.fmean((found[o].high - found[o].low) / 2 for o in OUTCOMES) * 100 / n


def _one_campaign(recipients: int, seed: int) -> dict[str, Any]:
    truth, alone, published, _ = _campaign(str(seed), recipients, DEFAULT_REPORT_EPSILON)
    n = recipients - truth[NO_SIGNAL]  # the reports that carry an outcome
    per_outcome = {
        o: {
            "true": truth[o],
            "estimate": round(alone[o].value, 1),
            "ci95": [round(alone[o].low, 1), round(alone[o].high, 1)],
            "error_pct_of_reports": round(100 * abs(alone[o].value - truth[o]) / n, 2),
            "true_in_ci": alone[o].low <= truth[o] <= alone[o].high,
        }
        for o in OUTCOMES
    }
    shown_errors = dict(zip(OUTCOMES, _errors_pct(published, truth, n), strict=True))
    return {
        "with_signal": n,
        "no_signal": truth[NO_SIGNAL],
        "outcomes": per_outcome,
        "worst_error_pct": max(e["error_pct_of_reports"] for e in per_outcome.values()),
        "ci_half_width_pct": round(_half_pct(alone, n), 2),
        "published": {
            "central_epsilon": DEFAULT_CENTRAL_EPSILON,
            "error_pct_of_reports": {o: round(e, 2) for o, e in shown_errors.items()},
            "worst_error_pct": round(max(shown_errors.values()), 2),
            "ci_half_width_pct": round(_half_pct(published, n), 2),
        },
    }


def _by_epsilon(recipients: int, seed: int) -> list[dict[str, Any]]:
    rows = []
    for epsilon in EPSILONS:
        alone_errors: list[float] = []
        shown_errors: list[float] = []
        alone_halves: list[float] = []
        shown_halves: list[float] = []
        for trial in range(EPSILON_TRIALS):
            truth, alone, published, _ = _campaign(
                f"{seed}:eps:{epsilon!r}:{trial}", recipients, epsilon
            )
            n = recipients - truth[NO_SIGNAL]
            alone_errors += _errors_pct(alone, truth, n)
            shown_errors += _errors_pct(published, truth, n)
            alone_halves.append(_half_pct(alone, n))
            shown_halves.append(_half_pct(published, n))
        rows.append(
            {
                "epsilon_per_report": round(epsilon, 4),
                "truth_probability": round(truth_probability(epsilon), 4),
                "mean_abs_error_pct": round(statistics.fmean(alone_errors), 3),
                "worst_error_pct": round(max(alone_errors), 2),
                "ci_half_width_pct": round(statistics.fmean(alone_halves), 2),
                "published_mean_abs_error_pct": round(statistics.fmean(shown_errors), 3),
                "published_ci_half_width_pct": round(statistics.fmean(shown_halves), 2),
            }
        )
    return rows


def _coverage(seed: int, seeds: int) -> dict[str, Any]:
    hits: Counter[int] = Counter()
    total: Counter[int] = Counter()
    by_outcome: Counter[str] = Counter()
    no_signal_hits = 0
    margin = noise.margin(noise.scale_for(TALLY_SENSITIVITY, DEFAULT_CENTRAL_EPSILON))
    for size in COVERAGE_SIZES:
        for i in range(seeds):
            truth, _, published, no_signal = _campaign(
                f"{seed}:cover:{size}:{i}", size, DEFAULT_REPORT_EPSILON
            )
            for o in OUTCOMES:
                covered = published[o].low <= truth[o] <= published[o].high
                hits[size] += covered
                by_outcome[o] += covered
                total[size] += 1
            no_signal_hits += abs(no_signal - truth[NO_SIGNAL]) <= margin
    intervals = sum(total.values())
    share = sum(hits.values()) / intervals
    campaigns = len(COVERAGE_SIZES) * seeds
    return {
        "campaigns": campaigns,
        "seeds": campaigns,
        "audiences": list(COVERAGE_SIZES),
        "budget_spent_share": BUDGET_SPENT_SHARE,
        "central_epsilon": DEFAULT_CENTRAL_EPSILON,
        "intervals": intervals,
        "covered": round(share, 4),
        "standard_error": round(math.sqrt(0.95 * 0.05 / intervals), 4),
        "by_audience": {str(size): round(hits[size] / total[size], 4) for size in total},
        "by_outcome": {o: round(by_outcome[o] / campaigns, 4) for o in OUTCOMES},
        "no_signal_count_within_margin": round(no_signal_hits / campaigns, 4),
    }


def estimation_error(
    recipients: int = 10_000, seed: int = 7, coverage_seeds: int = COVERAGE_SEEDS
) -> dict[str, Any]:
    """The benchmark's result; ``coverage_seeds`` campaigns per audience size for the
    coverage (fewer only to test it quickly)."""
    start = time.perf_counter()
    one = _one_campaign(recipients, seed)
    by_epsilon = _by_epsilon(recipients, seed)
    coverage = _coverage(seed, coverage_seeds)
    elapsed = time.perf_counter() - start
    low, high = TARGET_COVERAGE
    return {
        "name": "signals_estimation",
        "what": f"{recipients:,} recipients, {BUDGET_SPENT_SHARE:.0%} of them with their budget "
        "spent (no_signal), k-ary randomized response at epsilon ln 3 a report "
        f"(p {truth_probability():.2f}); coverage of the published 95% intervals over "
        f"{coverage['campaigns']} seeded campaigns with the relay's central noise",
        "floor": "no noise: error 0",
        "recipients": recipients,
        "epsilon_per_report": round(DEFAULT_REPORT_EPSILON, 4),
        **one,
        "by_epsilon": by_epsilon,
        "coverage": coverage,
        "simulate_s": round(elapsed, 3),
        "target": f"published 95% intervals hold the truth {low:.0%} to {high:.0%} of the time",
        "ok": low <= coverage["covered"] <= high,
    }
