"""Report bits the relay can read: randomized response, checked against the truth.

Each bit a device reports must be its person's true bit kept with probability
p = e^ε / (1 + e^ε) (ε = ln 3 per bit: p = 0.75), flipped otherwise; a device whose privacy
budget is spent sends uniformly random bits (p = 1/2). The relay, reading a report, guesses
each true bit as the reported one: it is right a share p of the time, which is all the design
allows. The audit knows every person's true bits, and which report is whose, so it measures
that share per event bit, for the devices with budget and those without, and tests it against
p with an exact two-sided binomial test: a bit sent without noise (right every time), or bits
that do not follow the truth at all, fail it.
"""

import math
from collections import defaultdict
from collections.abc import Sequence

from sealpost.audit.checks import Check, make_check
from sealpost.audit.received import Received
from sealpost.audit.stats import binomial_two_sided
from sealpost.audit.world import WorldResult
from shared.signals import DEFAULT_EPSILON_PER_BIT, EVENTS, keep_probability

# A false alarm once in a million per bit and group; a bit without noise is far past it from
# a few dozen reports (0.75^40 is about 1e-5, doubled for two sides, 2e-5: so from 50).
ALPHA = 1e-6


def randomized_response(world: WorldResult, reports: Sequence[Received]) -> Check:
    by_token = {r.report.token_input: r.report for r in reports}
    p = keep_probability(DEFAULT_EPSILON_PER_BIT)
    # group -> event -> [reports, reported bit equal to the true bit]
    agree: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for r in world.redemptions:
        report = by_token.get(r.token_input)
        if report is None or r.true_bits is None:
            continue
        group = "budget_spent" if r.budget_spent else "randomized"
        for i, event in enumerate(EVENTS):
            counts = agree[group][event]
            counts[0] += 1
            counts[1] += (report.bits >> i & 1) == (r.true_bits >> i & 1)
    violations = []
    table: dict[str, dict[str, dict[str, float]]] = {}
    worst = ("", "", 0.5)
    for group, expected in (("randomized", p), ("budget_spent", 0.5)):
        for event in EVENTS:
            n, same = agree[group][event]
            if not n:
                continue
            share = same / n
            p_value = binomial_two_sided(n, expected, same)
            table.setdefault(group, {})[event] = {
                "reports": n,
                "same_as_truth": round(share, 4),
                "expected": round(expected, 4),
                "p_value": float(f"{p_value:.3g}"),
            }
            if group == "randomized" and share > worst[2]:
                worst = (group, event, share)
            if p_value < ALPHA:
                why = "more" if share > expected else "less"
                violations.append(
                    f"{group} reports: bit {event} equals the true bit in {share:.0%} of {n} "
                    f"reports, {why} than the {expected:.0%} randomized response gives "
                    f"(p = {p_value:.2g}): "
                    + ("the relay reads it" if share > expected else "it does not follow the truth")
                )
    allowed = math.exp(DEFAULT_EPSILON_PER_BIT) / (1 + math.exp(DEFAULT_EPSILON_PER_BIT))
    pooled = [agree["randomized"][e] for e in EVENTS if agree["randomized"][e][0]]
    average = sum(same for _, same in pooled) / sum(n for n, _ in pooled) if pooled else 0.0
    measured = (
        f"the relay reads a person's true bit from her report right {average:.1%} of the time "
        f"(best bit {worst[1]}: {worst[2]:.0%} of {agree['randomized'][worst[1]][0]}); "
        f"randomized response allows {allowed:.0%}, chance is 50%"
        if worst[1]
        else "no report with its truth"
    )
    return make_check(
        "randomized_response",
        "Every reported bit went through randomized response on the device",
        violations,
        f"per event bit, the share of reports whose bit equals the person's true bit, against "
        f"p = {p:.2f} (ε = ln 3 per bit) for devices with budget and 1/2 for those whose "
        f"budget is spent; exact two-sided binomial test at {ALPHA:g}",
        measured=measured,
        agreement=table,
    )
