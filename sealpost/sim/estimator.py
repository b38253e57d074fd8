"""The relay's interaction estimate, for any keep-probability, and its central noise.

A business's interaction figures (server/figures.py) come from two noises: randomized
response on every device (keep probability p per bit) and the relay's discrete Laplace noise
on the tallies, drawn once when the figures are published. The relay debiases assuming the
production p (ln 3 per bit); a simulation that gave its devices another epsilon redoes that
last step with the right p (:func:`redebias`), and the sweep draws the central noise itself
from a seeded generator (:func:`discrete_laplace`), so that a grid is reproducible. The
formulas are the relay's: unbiased, unclipped, the interval adding both variances.
"""

import math
import random
from dataclasses import dataclass
from statistics import NormalDist

from server import noise
from server.figures import TALLY_SENSITIVITY
from server.settings import RelaySettings
from shared.signals import DEFAULT_EPSILON_PER_BIT, keep_probability

Z95 = NormalDist().inv_cdf(0.975)
# The relay's default epsilon for a campaign's interaction estimates.
DEFAULT_CENTRAL_EPSILON: float = RelaySettings.model_fields["figures_epsilon_interactions"].default


@dataclass(frozen=True)
class Found:
    value: float
    low: float
    high: float


def central_scale(epsilon: float) -> float:
    """The discrete Laplace scale of the relay's noise on a campaign's report tallies."""
    return noise.scale_for(TALLY_SENSITIVITY, epsilon)


def central_variance(epsilon: float | None) -> float:
    """Variance of that noise on one tally; 0 without central noise (``None`` or 0)."""
    return noise.variance(central_scale(epsilon)) if epsilon else 0.0


def relay_estimate(ones: int, n: int, p: float, central: float) -> Found:
    """How many people did a thing, from ``ones`` set bits among ``n`` reports (both as
    published, noisy), as server/figures.py computes it: (ones - n(1-p)) / (2p-1), its 95 %
    interval from both noises' variance (``central``: one tally's central variance)."""
    value = (ones - n * (1 - p)) / (2 * p - 1)
    var = (max(n, 0) * p * (1 - p) + central * (1 + (1 - p) ** 2)) / (2 * p - 1) ** 2
    half = Z95 * math.sqrt(var)
    return Found(value=value, low=value - half, high=value + half)


def redebias(value: float, n: int, p: float, central: float) -> Found:
    """A published estimate (debiased by the relay with the production p, from ``n``
    published reports) debiased again with the devices' ``p``: the published, noisy count of
    set bits is recovered from it (exactly: it is an integer), nothing else changes."""
    p0 = keep_probability(DEFAULT_EPSILON_PER_BIT)
    ones = round(value * (2 * p0 - 1) + n * (1 - p0))
    return relay_estimate(ones, n, p, central)


def discrete_laplace(rng: random.Random, scale: float) -> int:
    """One draw of the relay's central noise, from ``rng``: the difference of two geometric
    variables with ratio e^(-1/scale) is discrete Laplace of that scale. For simulation only;
    the relay draws its own from OpenDP (server/noise.py)."""
    a = math.exp(-1 / scale)

    def geometric() -> int:  # failures before the first success, success probability 1 - a
        return int(math.log(1 - rng.random()) / math.log(a))

    return geometric() - geometric()
