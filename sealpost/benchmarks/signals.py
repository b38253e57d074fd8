"""Estimation error of interaction signals: 10,000 recipients, default epsilon, known truth.

Each simulated recipient randomizes its true bits exactly as the client does
(shared.signals.randomize with the default epsilon) and the debiased estimate is compared
with the truth. The floor is the error with no noise at all (zero): the figure that matters is
the absolute error and the width of the 95% interval. The target is on the randomized
response, the devices' noise.

What a business is shown carries the relay's central noise as well (discrete Laplace on the
tallies, once per campaign, server/figures.py): the same tallies with that noise (drawn from
the seeded generator, at the relay's default epsilon) and debiased as the relay publishes
them are reported next to it, under ``published``, with no target of their own.
"""

import random
import time
from typing import Any

from sealpost.sim.estimator import (
    DEFAULT_CENTRAL_EPSILON,
    central_scale,
    central_variance,
    discrete_laplace,
    relay_estimate,
)
from shared.signals import (
    DEFAULT_EPSILON_PER_BIT,
    EVENTS,
    estimate,
    event_bit,
    keep_probability,
    randomize,
)

# Plausible interaction rates for a marketing campaign.
TRUE_RATES = {
    "read": 0.55,
    "clicked": 0.08,
    "dismissed": 0.20,
    "stopped_promotions": 0.03,
    "blocked": 0.01,
    "reported": 0.005,
}
TARGET_ERROR_PCT = 3.0  # of the audience, per event


def estimation_error(recipients: int = 10_000, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    p = keep_probability(DEFAULT_EPSILON_PER_BIT)
    true_counts = dict.fromkeys(EVENTS, 0)
    ones = dict.fromkeys(EVENTS, 0)
    start = time.perf_counter()
    for _ in range(recipients):
        bits = event_bit("delivered")
        for event, rate in TRUE_RATES.items():
            if rng.random() < rate:
                bits |= event_bit(event)  # type: ignore[arg-type]
        for event in EVENTS:
            true_counts[event] += bool(bits & event_bit(event))
        noisy = randomize(bits, DEFAULT_EPSILON_PER_BIT, rng)
        for event in EVENTS:
            ones[event] += bool(noisy & event_bit(event))
    elapsed = time.perf_counter() - start
    per_event = {}
    for event in TRUE_RATES:
        found = estimate(ones[event], recipients, p)
        per_event[event] = {
            "true": true_counts[event],
            "estimate": round(found.value, 1),
            "ci95": [round(found.low, 1), round(found.high, 1)],
            "error_pct_of_audience": round(
                100 * abs(found.value - true_counts[event]) / recipients, 2
            ),
            "true_in_ci": found.low <= true_counts[event] <= found.high,
        }
    worst = max(e["error_pct_of_audience"] for e in per_event.values())
    published = _published(rng, ones, recipients, p, true_counts)
    return {
        "name": "signals_estimation",
        "what": f"{recipients} recipients, randomized response at epsilon ln 3 per bit "
        f"(keep probability {p:.2f}), debiased",
        "floor": "no noise: error 0",
        "recipients": recipients,
        "epsilon_per_bit": round(DEFAULT_EPSILON_PER_BIT, 4),
        "events": per_event,
        "worst_error_pct": worst,
        "ci_half_width_pct": round(
            100 * (per_event["read"]["ci95"][1] - per_event["read"]["ci95"][0]) / 2 / recipients, 2
        ),
        "simulate_s": round(elapsed, 3),
        "target": f"every event within {TARGET_ERROR_PCT}% of the audience, from the "
        "randomized response",
        "ok": worst <= TARGET_ERROR_PCT,
        "published": published,
    }


def _published(
    rng: random.Random, ones: dict[str, int], n: int, p: float, truth: dict[str, int]
) -> dict[str, Any]:
    """The same tallies as the relay publishes them: central noise, then its estimate."""
    scale, central = (
        central_scale(DEFAULT_CENTRAL_EPSILON),
        central_variance(DEFAULT_CENTRAL_EPSILON),
    )
    shown_n = n + discrete_laplace(rng, scale)
    found = {
        event: relay_estimate(ones[event] + discrete_laplace(rng, scale), shown_n, p, central)
        for event in TRUE_RATES
    }
    errors = {e: round(100 * abs(f.value - truth[e]) / n, 2) for e, f in found.items()}
    # One interval width for all: the same reports, the same noises.
    half = (found["read"].high - found["read"].low) / 2
    return {
        "central_epsilon": DEFAULT_CENTRAL_EPSILON,
        "error_pct_of_audience": errors,
        "worst_error_pct": max(errors.values()),
        "ci_half_width_pct": round(100 * half / n, 2),
    }
