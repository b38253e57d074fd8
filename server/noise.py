"""Central noise for what a business is shown: OpenDP's discrete Laplace, and its intervals.

Every figure a business reads about people goes through :func:`noisy_counts`; nothing in the
relay samples noise by hand. The noise is drawn once per release and stored with it, so
reading a report again returns the same figures (re-sampling would let a business average
the noise away).
"""

import math
from functools import cache

import opendp.prelude as dp

dp.enable_features("contrib")


@cache
def _mechanism(scale: float) -> dp.Measurement:
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
    return space >> dp.m.then_laplace(scale=scale)


def scale_for(sensitivity: int, epsilon: float) -> float:
    """The discrete Laplace scale that makes a release of L1 ``sensitivity`` ε-DP."""
    if sensitivity < 1 or epsilon <= 0:
        raise ValueError("sensitivity must be >= 1 and epsilon > 0")
    return sensitivity / epsilon


def noisy_counts(values: list[int], sensitivity: int, epsilon: float) -> list[int]:
    """``values`` plus discrete Laplace noise, ε-DP for inputs within L1 ``sensitivity``.

    OpenDP's own privacy map checks the claim: the measurement must report at most
    ``epsilon`` for the stated sensitivity, or nothing is released.
    """
    measurement = _mechanism(scale_for(sensitivity, epsilon))
    if measurement.map(sensitivity) > epsilon * (1 + 1e-9):
        raise RuntimeError("the noise is weaker than the stated epsilon; nothing released")
    return [int(v) for v in measurement([int(v) for v in values])]


def margin(scale: float, confidence: float = 0.95) -> int:
    """Half-width t of the interval holding one discrete Laplace draw with ``confidence``.

    With a = e^(-1/scale), P(|X| >= t) = 2 a^t / (1 + a) for t >= 1: the smallest t with
    P(|X| > t) <= 1 - confidence.
    """
    a = math.exp(-1 / scale)
    t = math.log((1 - confidence) * (1 + a) / 2) / math.log(a) - 1
    return max(0, math.ceil(t))


def variance(scale: float) -> float:
    """Variance of one discrete Laplace draw: 2a / (1 - a)^2 with a = e^(-1/scale)."""
    a = math.exp(-1 / scale)
    return 2 * a / (1 - a) ** 2


def sum_margin(scale: float, terms: int, confidence: float = 0.95) -> int:
    """Half-width of a 95 % interval for the sum of ``terms`` independent draws (normal
    approximation; exact for one term)."""
    if terms == 1:
        return margin(scale, confidence)
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return math.ceil(z * math.sqrt(terms * variance(scale)))
