"""Privacy amplification by shuffling: the central ε a shuffled batch of local reports gives.

A report that is ε0-locally differentially private on its own is hidden much better once it
is one of n reports shuffled together, so that the relay sees the batch as a multiset and not
who sent which. This module states how much better, with the closed-form bound of

    Vitaly Feldman, Audra McMillan, Kunal Talwar, "Hiding Among the Clones: A Simple and
    Nearly Optimal Analysis of Privacy Amplification by Shuffling", FOCS 2021
    (arXiv:2012.12803), Theorem 3.1:

    for δ ∈ (0, 1], n ≥ 1 and ε0 ≤ log(n / (16 log(2/δ))), the shuffled output of n
    ε0-LDP reports is (ε, δ)-DP with
    ε ≤ log(1 + (e^ε0 - 1)/(e^ε0 + 1) · (8 √(e^ε0 log(4/δ)) / √n + 8 e^ε0 / n)).

Outside that range the theorem says nothing, and the batch is only as private as one report:
shuffling is post-processing of the reports, so ε0 (with δ = 0) always holds. Pure functions,
no I/O; shared by the shuffler's status page, the docs and the simulator.
"""

import math
from dataclasses import dataclass

REFERENCE = "Feldman, McMillan, Talwar, Hiding Among the Clones (FOCS 2021), Theorem 3.1"
# δ well under 1/n for any batch the shuffler forms: the usual rule for a meaningful δ.
DEFAULT_DELTA = 1e-6


def _check(local_epsilon: float, n: int, delta: float) -> None:
    if not (local_epsilon >= 0 and math.isfinite(local_epsilon)):
        raise ValueError("local_epsilon must be finite and non-negative")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError("n must be a positive integer")
    if not 0 < delta <= 1:
        raise ValueError("delta must be in (0, 1]")


def max_local_epsilon(n: int, delta: float = DEFAULT_DELTA) -> float:
    """The largest ε0 the bound covers for ``n`` reports: log(n / (16 log(2/δ)))."""
    _check(0.0, n, delta)
    return math.log(n / (16 * math.log(2 / delta)))


def min_reports(local_epsilon: float, delta: float = DEFAULT_DELTA) -> int:
    """The fewest reports a batch needs for the bound to cover ε0: ⌈16 log(2/δ) e^ε0⌉."""
    _check(local_epsilon, 1, delta)
    n = math.ceil(16 * math.log(2 / delta) * math.exp(local_epsilon))
    # ceil on a float product may land one short of the condition; step until it holds.
    while max_local_epsilon(n, delta) < local_epsilon:
        n += 1
    return n


def shuffled_epsilon(local_epsilon: float, n: int, delta: float = DEFAULT_DELTA) -> float | None:
    """The theorem's ε for ``n`` shuffled ε0-LDP reports, or None where it does not apply.

    The value is the formula's, unclipped; :func:`amplify` gives what to state.
    """
    _check(local_epsilon, n, delta)
    if local_epsilon > max_local_epsilon(n, delta):
        return None
    e0 = math.exp(local_epsilon)
    spread = 8 * math.sqrt(e0 * math.log(4 / delta)) / math.sqrt(n) + 8 * e0 / n
    return math.log1p((e0 - 1) / (e0 + 1) * spread)


@dataclass(frozen=True)
class ShuffleBound:
    """What one batch of ``n`` shuffled reports guarantees, ready to show."""

    local_epsilon: float  # ε0 of one report, as the device randomised it
    n: int  # reports shuffled together (per campaign: a report names its campaign)
    delta: float
    central_epsilon: float  # min(ε0, the theorem's ε): never worse than one report alone
    amplified: bool  # the theorem applies and beats ε0
    min_reports: int  # the batch size from which the theorem applies to this ε0
    reference: str = REFERENCE

    def to_json(self) -> dict[str, float | int | bool | str]:
        return {
            "local_epsilon": round(self.local_epsilon, 6),
            "n": self.n,
            "delta": self.delta,
            "central_epsilon": round(self.central_epsilon, 6),
            "amplified": self.amplified,
            "min_reports_for_bound": self.min_reports,
            "reference": self.reference,
        }


def amplify(local_epsilon: float, n: int, delta: float = DEFAULT_DELTA) -> ShuffleBound:
    """The central ε of ``n`` shuffled ε0-LDP reports: the theorem's where it applies and is
    smaller, else ε0 itself (shuffling never makes a report less private)."""
    bound = shuffled_epsilon(local_epsilon, n, delta)
    central = local_epsilon if bound is None else min(bound, local_epsilon)
    return ShuffleBound(
        local_epsilon=local_epsilon,
        n=n,
        delta=delta,
        central_epsilon=central,
        amplified=bound is not None and bound < local_epsilon,
        min_reports=min_reports(local_epsilon, delta),
    )
