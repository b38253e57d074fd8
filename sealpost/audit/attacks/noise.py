"""Report outcomes the relay can read: randomized response, checked against the truth.

A device with budget reports its person's true outcome (what she did with the copy: not
read, read, clicked or dismissed, ``shared.signals.outcome_of``) with probability
p = e^ε / (e^ε + k - 1) and each of the k - 1 others with q = 1 / (e^ε + k - 1) (k-ary
randomized response; k = 4 and ε = ln 3: p = 1/2, q = 1/6). A device whose privacy budget is
spent (or whose signals are off) reports ``no_signal``, and nothing else: no outcome, drawn
or true. The relay, reading a report, guesses the true outcome as the reported one: it is
right a share p of the time, which is all the design allows.

The audit knows every person's true outcome and which report is whose, so it measures, for
the devices with budget, per true outcome the share of reports that name it (against p), and
per reported outcome the share of the reports of people with another outcome that name it
(against q), each with an exact two-sided binomial test: an outcome sent without noise
(named every time), or reports that do not follow the truth at all, fail it. Every report of
a device with its budget spent must say ``no_signal``, and none of the others may.
"""

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sealpost.audit.checks import Check, make_check
from sealpost.audit.received import Received
from sealpost.audit.stats import binomial_two_sided
from sealpost.audit.world import WorldResult
from shared.signals import (
    DEFAULT_REPORT_EPSILON,
    NO_SIGNAL,
    OUTCOMES,
    other_probability,
    truth_probability,
)

# A false alarm once in a million per test; an outcome sent without noise is past it from
# 21 reports of people with that outcome (0.5^21, doubled for two sides, is 9.5e-7).
ALPHA = 1e-6


def randomized_response(world: WorldResult, reports: Sequence[Received]) -> Check:
    by_token = {r.report.token_input: r.report for r in reports}
    p = truth_probability(DEFAULT_REPORT_EPSILON)
    q = other_probability(DEFAULT_REPORT_EPSILON)
    # devices with budget: true outcome -> reported value -> reports
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    spent: Counter[str] = Counter()  # devices with their budget spent: reported value -> n
    for r in world.redemptions:
        report = by_token.get(r.token_input)
        if report is None or r.true_outcome is None:
            continue
        if r.budget_spent:
            spent[report.outcome] += 1
        else:
            confusion[r.true_outcome][report.outcome] += 1
    violations: list[str] = []
    agreement: dict[str, dict[str, Any]] = {}
    for truth in OUTCOMES:
        n = sum(confusion[truth].values())
        if not n:
            continue
        same = confusion[truth][truth]
        share = same / n
        p_value = binomial_two_sided(n, p, same)
        agreement[truth] = _row(n, share, p, p_value, "same_as_truth")
        if p_value < ALPHA:
            why = "more" if share > p else "less"
            violations.append(
                f"randomized reports: outcome {truth} reported as it is in {share:.0%} of {n} "
                f"reports, {why} than the {p:.0%} randomized response gives "
                f"(p = {p_value:.2g}): "
                + ("the relay reads it" if share > p else "they do not follow the truth")
            )
    others: dict[str, dict[str, Any]] = {}
    for value in OUTCOMES:
        n = sum(sum(confusion[t].values()) for t in OUTCOMES if t != value)
        if not n:
            continue
        named = sum(confusion[t][value] for t in OUTCOMES if t != value)
        share = named / n
        p_value = binomial_two_sided(n, q, named)
        others[value] = _row(n, share, q, p_value, "reported_as_this")
        if p_value < ALPHA:
            violations.append(
                f"randomized reports: {value} reported for {share:.0%} of the {n} people who "
                f"did something else, not the {q:.0%} randomized response gives "
                f"(p = {p_value:.2g})"
            )
    with_budget = sum(sum(c.values()) for c in confusion.values())
    silent = sum(c[NO_SIGNAL] for c in confusion.values())
    if silent:
        violations.append(
            f"{silent} of {with_budget} reports of devices with budget say {NO_SIGNAL}: "
            "their outcome went missing"
        )
    spent_total = sum(spent.values())
    spoke = {v: n for v, n in sorted(spent.items()) if v != NO_SIGNAL}
    if spoke:
        violations.append(
            f"{sum(spoke.values())} of {spent_total} reports of devices whose budget is spent "
            f"carry an outcome ({', '.join(f'{v} {n}' for v, n in spoke.items())}), not "
            f"{NO_SIGNAL}: they spend what is not there"
        )
    pooled = sum(confusion[t][t] for t in OUTCOMES)
    average = pooled / with_budget if with_budget else 0.0
    best = max(agreement.items(), key=lambda kv: kv[1]["same_as_truth"], default=None)
    measured = (
        f"the relay reads a person's true outcome from her report right {average:.1%} of the "
        f"time (best outcome {best[0]}: {best[1]['same_as_truth']:.0%} of "
        f"{best[1]['reports']}); randomized response allows {p:.0%}, a blind guess among "
        f"{len(OUTCOMES)} gets {1 / len(OUTCOMES):.0%}; {spent[NO_SIGNAL]} of {spent_total} "
        f"reports of spent-budget devices say {NO_SIGNAL}"
        if best
        else "no report with its truth"
    )
    return make_check(
        "randomized_response",
        "Every reported outcome went through randomized response on the device",
        violations,
        f"per true outcome, the share of reports that name it, against p = {p:.2f}, and per "
        f"reported outcome, its share among people with another one, against q = {q:.2f} "
        f"(k = {len(OUTCOMES)}, ε = ln 3 a report), for devices with budget; exact two-sided "
        f"binomial tests at {ALPHA:g}; every report of a device whose budget is spent says "
        f"{NO_SIGNAL}, and no other does",
        measured=measured,
        agreement={"randomized": agreement},
        reported_for_others=others,
        no_signal={
            "budget_spent": {"reports": spent_total, NO_SIGNAL: spent[NO_SIGNAL]},
            "with_budget": {"reports": with_budget, NO_SIGNAL: silent},
        },
    )


def _row(n: int, share: float, expected: float, p_value: float, name: str) -> dict[str, Any]:
    return {
        "reports": n,
        name: round(share, 4),
        "expected": round(expected, 4),
        "p_value": float(f"{p_value:.3g}"),
    }
