"""The small statistics the audit's checks and attacks share."""

import math
from collections import Counter
from collections.abc import Iterable


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman's rank correlation of two equally long lists (ties broken by position)."""

    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=values.__getitem__)
        out = [0.0] * len(values)
        for rank, i in enumerate(order):
            out[i] = float(rank)
        return out

    rx, ry = ranks(xs), ranks(ys)
    n = len(xs)
    mean = (n - 1) / 2
    cov = sum((a - mean) * (b - mean) for a, b in zip(rx, ry, strict=True))
    var = sum((a - mean) ** 2 for a in rx)
    return cov / var if var else 0.0


def histogram(values: Iterable[int]) -> dict[str, int]:
    """Counts of each value, in increasing order, keyed by its text (for JSON)."""
    counts = Counter(str(v) for v in values)
    return dict(sorted(counts.items(), key=lambda kv: int(kv[0])))


def binomial_tail(n: int, p: float, k: int) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (n up to tens of thousands)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    terms = [
        log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        for i in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def binomial_two_sided(n: int, p: float, k: int) -> float:
    """The smaller tail of ``k`` successes in ``n`` at ``p``, doubled (a two-sided p-value)."""
    upper = binomial_tail(n, p, k)
    lower = 1 - binomial_tail(n, p, k + 1)
    return min(1.0, 2 * min(upper, lower))
