"""The relay's interaction estimates, reproduced from a seeded generator.

A business's interaction figures (server/figures.py) come from two noises: k-ary randomized
response on every device (``shared.signals.randomize``: the true outcome with probability
p, each other with q) and the relay's discrete Laplace noise on its tallies, one per report
value (no_signal and the four outcomes, at server.figures.TALLY_SENSITIVITY), drawn once
when the figures are published. The relay then estimates each outcome with
``shared.signals.estimate``, its interval holding both noises. The sweep and the benchmark
do the same here, the central noise drawn from a seeded generator (:func:`discrete_laplace`)
so that a grid is reproducible; the formulas are the relay's: unbiased, unclipped, among the
reports that carry a signal.
"""

import math
import random
from collections.abc import Mapping
from statistics import NormalDist

from server import noise
from server.figures import TALLY_SENSITIVITY
from server.settings import RelaySettings
from shared.signals import (
    DEFAULT_REPORT_EPSILON,
    REPORT_VALUES,
    Estimate,
    Outcome,
    ReportValue,
    estimate,
)

Z95 = NormalDist().inv_cdf(0.975)
# The relay's default epsilon for a campaign's interaction estimates.
DEFAULT_CENTRAL_EPSILON: float = RelaySettings.model_fields["figures_epsilon_interactions"].default


def central_scale(epsilon: float) -> float:
    """The discrete Laplace scale of the relay's noise on a campaign's report tallies."""
    return noise.scale_for(TALLY_SENSITIVITY, epsilon)


def central_variance(epsilon: float | None) -> float:
    """Variance of that noise on one tally; 0 without central noise (``None`` or 0)."""
    return noise.variance(central_scale(epsilon)) if epsilon else 0.0


def discrete_laplace(rng: random.Random, scale: float) -> int:
    """One draw of the relay's central noise, from ``rng``: the difference of two geometric
    variables with ratio e^(-1/scale) is discrete Laplace of that scale. For simulation only;
    the relay draws its own from OpenDP (server/noise.py)."""
    a = math.exp(-1 / scale)

    def geometric() -> int:  # failures before the first success, success probability 1 - a
        return int(math.log(1 - rng.random()) / math.log(a))

    return geometric() - geometric()


def noised(
    counts: Mapping[str, int], central_epsilon: float, rng: random.Random
) -> dict[ReportValue, int]:
    """Every tally (each report value) as the relay publishes it: with discrete Laplace
    noise at ``central_epsilon`` (none at 0), from the seeded ``rng``."""
    if not central_epsilon:
        return {v: counts.get(v, 0) for v in REPORT_VALUES}
    scale = central_scale(central_epsilon)
    return {v: counts.get(v, 0) + discrete_laplace(rng, scale) for v in REPORT_VALUES}


def relay_estimates(
    counts: Mapping[str, float],
    central_epsilon: float,
    epsilon: float = DEFAULT_REPORT_EPSILON,
) -> dict[Outcome, Estimate]:
    """The relay's estimates from tallies (noised at ``central_epsilon``, 0: not noised) of
    reports randomized at ``epsilon``: ``shared.signals.estimate`` with the central noise's
    variance, as server/figures.py calls it."""
    return estimate(counts, epsilon, central_variance=central_variance(central_epsilon))
