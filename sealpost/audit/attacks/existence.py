"""Reports whose absence says something: every delivered copy's report must reach the relay.

A device sends one report per campaign copy it received, whatever its person did and whatever
is left of its privacy budget (with the budget spent, the report says no_signal, but it still
goes): otherwise a missing report tells the relay, which knows who received a copy and
got a token for it, that this person's budget is spent, or that she turned signals off. The
audit knows which devices' budgets were spent (a tenth of its persons) and which report is
whose, so it counts, per group, the copies whose report never arrived. The relay's own view
is checked too: tokens issued per campaign against reports counted.
"""

from collections import Counter
from collections.abc import Sequence

from sealpost.audit.checks import TOKEN_PATHS, Check, make_check, token_pairs
from sealpost.audit.received import Received
from sealpost.audit.recorder import Exchange
from sealpost.audit.world import WorldResult


def report_existence(
    world: WorldResult, reports: Sequence[Received], issued: dict[str, int]
) -> Check:
    """``issued``: per campaign id, the tokens the relay issued (from its record)."""
    arrived = {r.report.token_input for r in reports}
    planned: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    for r in world.redemptions:
        group = "budget_spent" if r.budget_spent else "with_budget"
        planned[group] += 1
        missing[group] += r.token_input not in arrived
    violations = [
        f"{missing[g]} of {planned[g]} reports of devices {g.replace('_', ' ')} never reached "
        "the relay: their absence tells it about those people"
        for g in ("budget_spent", "with_budget")
        if missing[g]
    ]
    counted = Counter(r.report.campaign_id for r in reports)
    for label, cid in world.campaigns.items():
        if issued.get(cid, 0) != counted.get(cid, 0):
            violations.append(
                f"{label}: the relay issued {issued.get(cid, 0)} tokens and received "
                f"{counted.get(cid, 0)} reports: it sees who did not report"
            )
    rates = {g: missing[g] / planned[g] if planned[g] else 0.0 for g in planned}
    gap = abs(rates.get("budget_spent", 0.0) - rates.get("with_budget", 0.0))
    return make_check(
        "report_existence",
        "Every delivered copy's report reaches the relay, budget or not",
        violations,
        f"{sum(planned.values()):,} reports planned ({planned['budget_spent']:,} from devices "
        "whose budget is spent); every one must arrive, and tokens issued per campaign must "
        "equal reports received",
        measured=(
            f"missing reports: {rates.get('budget_spent', 0.0):.0%} of spent-budget devices', "
            f"{rates.get('with_budget', 0.0):.0%} of the others' (the relay's advantage "
            f"telling them apart: {gap:.0%}; allowed 0%)"
        ),
        planned=dict(planned),
        missing=dict(missing),
        issued_per_campaign={label: issued.get(cid, 0) for label, cid in world.campaigns.items()},
        received_per_campaign={
            label: counted.get(cid, 0) for label, cid in world.campaigns.items()
        },
    )


def issued_per_campaign(exchanges: Sequence[Exchange]) -> dict[str, int]:
    """Tokens the relay issued, per campaign, as its record of answered issuances shows."""
    issued: Counter[str] = Counter()
    for ex in exchanges:
        if ex.method == "POST" and ex.path in TOKEN_PATHS and ex.status == 200:
            for _, answer in token_pairs(ex):
                issued[str(answer.get("campaign_id"))] += 1
    return dict(issued)
