"""The hostile business's oracle (docs/privacy-boundary.md §5), played against a real relay.

A business wants one bit about one person: did she stop its promotions and stay offline
(world 1), or take its marketing and read it (world 0)? It uses everything it may: an audience
of one, accounts of its own that stopped its promotions (sock puppets, to difference
against), a second campaign padded with them, the result of every copy it submits, its
campaign reports before and after the figures are published, its balance and every ledger
line (charges, refunds, rebates), and the times of all of these.

Each trial is a fresh business, two puppets and a target in a world drawn at random. Two
measurements:

- the *exact part* (everything apart from the declared noisy release: a campaign's
  ``figures`` and the ``rebate`` they fund) must not depend on the world. Each trial's exact
  part is classified by the others with the same one (leave one out): its accuracy above
  the majority share means the exact part tells the worlds apart;
- the business's best guess from everything, figures included, is right no more often than
  e^ε / (1 + e^ε) (plus three standard errors), ε being what its budget view says it spent.

Its guess also reads the old oracles (exact refused and delivered totals, refund lines noted
``refused``, copies "in mailboxes"), so a relay that shows them fails.
``tests/functional/test_business_oracle.py`` runs the same attack on an embedded relay.
"""

import math
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import CampaignRun, run_campaign
from client.messenger import Messenger
from sealpost.audit.checks import Check, make_check
from sealpost.audit.fleet import gather_chunks
from shared.templates import TemplateDraft

DAY_MS = 86_400_000
OFFER = TemplateDraft(
    name="offer",
    category="marketing",
    body="Hi {{name}}, 20% off all week.",
    examples={"name": "Ana"},
)
PUPPETS = 2  # the business's own accounts, all of which stopped its promotions
PUBLISHED_AFTER_MS = 8 * DAY_MS  # past the publication of every figure
# Keys whose values are times or ids: compared relative to the trial's start, or dropped.
_TIMES = {"at", "send_at", "expires_at", "created_at", "figures_at", "published_at", "renews_at"}
_IDS = {"id", "campaign_id", "template_id", "name"}
_WRITTEN_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


async def campaign(shop: Messenger, template: Any, handles: list[str]) -> CampaignRun:
    """One campaign of the business to ``handles``, every copy submitted."""
    rows = [AudienceRow(i + 2, h, {"name": "N"}) for i, h in enumerate(handles)]
    return await run_campaign(
        shop.api,
        shop.profile.keys,
        shop.profile.handle,
        template,
        Audience(rows=rows),
        budget=10_000_000,
    )


def submitted(run: CampaignRun) -> dict[str, Any]:
    """What the business learnt submitting a campaign's copies: each copy's result."""
    return {
        "submitted": run.submitted,
        "accepted": run.accepted,
        "duplicate": run.duplicate,
        "rejected": dict(sorted(run.rejected.items())),
        "stopped": run.stopped,
    }


async def view(shop: Messenger, campaign_ids: list[str], start: int) -> dict[str, Any]:
    """Everything the business can read, as it reads it."""
    reports = [await shop.api.request("GET", f"/v1/campaigns/{c}") for c in campaign_ids]
    budget = await shop.api.request("GET", "/v1/budget")
    listing = await shop.api.request("GET", "/v1/campaigns")
    quality = await shop.api.request("GET", "/v1/quality")  # ratings and tier
    found = {"reports": reports, "budget": budget, "list": listing, "quality": quality}
    return relative(found, start)


def relative(value: Any, start: int) -> Any:
    """``value`` with ids dropped and times taken from ``start``: what two trials share."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in _IDS:
                continue
            if key in _TIMES and isinstance(item, int):
                out[key] = item - start
            elif isinstance(item, str):  # a time written in words: its offset stays in _TIMES
                out[key] = _WRITTEN_TIME.sub("<time>", item)
            else:
                out[key] = relative(item, start)
        return out
    if isinstance(value, list):
        return [relative(v, start) for v in value]
    return value


def exact_part(view: dict[str, Any]) -> dict[str, Any]:
    """The view without the declared noisy release: what must not depend on the person."""
    reports = [{k: v for k, v in r.items() if k != "figures"} for r in view["reports"]]
    listed = [{k: v for k, v in r.items() if k != "figures"} for r in view["list"]["campaigns"]]
    budget = dict(view["budget"])
    rebates = sum(line["amount"] for line in budget["ledger"] if line["kind"] == "rebate")
    budget["ledger"] = [line for line in budget["ledger"] if line["kind"] != "rebate"]
    # A rebate moves money from spent back to available: undo it to compare the rest.
    budget["available"] -= rebates
    budget["spent"] += rebates
    reports = [{**r, "refunded": None, "spend": None} for r in reports]
    listed = [{**r, "refunded": None, "spend": None} for r in listed]
    # Ratings and tiers are read off the published (noisy) figures alone (server/quality.py):
    # part of the noisy release, like the figures themselves.
    found = {"reports": reports, "budget": budget, "list": listed}
    if "sent" in view:
        found["sent"] = view["sent"]
    return found


def count(report: dict[str, Any], *path: str) -> float:
    """A figure from the published release (or, on a relay that publishes exact counts, the
    exact one): the adversary reads whatever is there."""
    figures = report.get("figures")
    if figures is None:  # an exact report: the attack this file guards against
        node: Any = report
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return float(node or 0)
    node = figures
    for key in path:
        node = node[key]
    return float(node["value"] if isinstance(node, dict) else node)


def guess(before: dict[str, Any], after: dict[str, Any]) -> int:
    """The business's best single guess of the world from what it saw."""
    # Exact refunds or refusals in the send results give the world away: a relay that shows
    # them for the puppets' copies (refused in both worlds) shows them for the target's too.
    ledger = after["budget"]["ledger"]
    refunded = sum(line["messages"] for line in ledger if line["note"] == "refused")
    if refunded:
        return int(refunded > PUPPETS)
    rejected = sum(sum(s["rejected"].values()) for s in before.get("sent", []))
    if rejected:
        return int(rejected > PUPPETS)
    solo, padded = after["reports"]
    score = count(solo, "refused") - count(solo, "delivered")
    score += count(padded, "refused") - PUPPETS - count(padded, "delivered")
    # A status that waits on a device (copies "in mailboxes") outweighs the noisy counts.
    if before["reports"][0].get("delivered_to_mailbox"):
        score += 1000
    return 1 if score > 0 else 0


@dataclass
class Trial:
    world: int
    before: dict[str, Any]
    after: dict[str, Any]
    epsilon: float  # what the business's budget view says it spent


@dataclass(frozen=True)
class RelayTime:
    """How the attack moves the relay's clock: ``now()`` in ms, ``release()`` runs the
    dispatcher now, ``advance_to(ms)`` moves the clock there and runs it."""

    now: Callable[[], int]
    release: Callable[[], Awaitable[None]]
    advance_to: Callable[[int], Awaitable[None]]


MakeAccount = Callable[..., Awaitable[Messenger]]


async def play(
    make_account: MakeAccount, relay: RelayTime, worlds: Sequence[int], prefix: str = "o"
) -> list[Trial]:
    """One trial per entry of ``worlds`` (0 or 1), all at once on one relay: each with its
    own business and target (the puppets are shared); the figures published once for all."""

    # The puppets serve every business: their copies are all refused (they stopped each
    # business's promotions), which counts towards no cap.
    puppets = [await make_account(f"{prefix}pup{i}") for i in range(PUPPETS)]

    async def set_up(n: int, world: int) -> tuple[Messenger, list[CampaignRun], Messenger]:
        shop = await make_account(f"{prefix}shop{n:03d}", business=True, display_name="Shop")
        await shop.api.top_up(100_000_000)
        template = await shop.api.register_template(OFFER)
        for puppet in puppets:
            await puppet.api.set_choice("promotions-stopped", shop.profile.handle, True)
        target = await make_account(f"{prefix}target{n:03d}")
        if world == 1:
            await target.api.set_choice("promotions-stopped", shop.profile.handle, True)
        solo = await campaign(shop, template, [target.profile.handle])
        padded = await campaign(
            shop, template, [p.profile.handle for p in puppets] + [target.profile.handle]
        )
        return shop, [solo, padded], target

    start = relay.now()
    made = await gather_chunks([set_up(n, w) for n, w in enumerate(worlds)])
    await relay.release()

    async def online(target: Messenger, world: int) -> None:
        if world == 0:  # online: the device takes both copies and acks them
            await target.sync()

    await gather_chunks([online(target, w) for (_, _, target), w in zip(made, worlds, strict=True)])

    async def look(shop: Messenger, runs: list[CampaignRun]) -> dict[str, Any]:
        seen = await view(shop, [r.campaign.id for r in runs], start)
        return {**seen, "sent": [submitted(r) for r in runs]}

    befores = await gather_chunks([look(shop, runs) for shop, runs, _ in made])
    await relay.advance_to(start + PUBLISHED_AFTER_MS)
    afters = await gather_chunks([look(shop, runs) for shop, runs, _ in made])
    return [
        Trial(
            world=w,
            before=before,
            after=after,
            epsilon=float(after["budget"].get("privacy", {}).get("spent_30d", 0.0)),
        )
        for w, before, after in zip(worlds, befores, afters, strict=True)
    ]


def worlds_for(trials: int, seed: int) -> list[int]:
    """A random world per trial, half of each (so that chance is exactly one half)."""
    worlds = [i % 2 for i in range(trials)]
    random.Random(f"{seed}:oracle").shuffle(worlds)
    return worlds


def _exact_accuracy(trials: Sequence[Trial]) -> float:
    """How well the exact part (before and after) tells the worlds apart: trials with the
    same exact part are guessed as that group's majority world. A trial whose exact part no
    other trial shares is a coin (so that a view that differs every time, whatever the
    world, does not count as telling anything)."""
    groups: dict[str, Counter[int]] = {}
    for t in trials:
        key = repr((exact_part(t.before), exact_part(t.after)))
        groups.setdefault(key, Counter())[t.world] += 1
    right = 0.0
    for worlds in groups.values():
        size = sum(worlds.values())
        right += max(worlds.values()) if size > 1 else 0.5
    return right / len(trials) if trials else 0.0


def business_oracle(trials: Sequence[Trial]) -> Check:
    violations: list[str] = []
    n = len(trials)
    if not n:
        violations.append("no trial ran")
    by_world = Counter(t.world for t in trials)
    exact = _exact_accuracy(trials)
    majority = max(by_world.values(), default=0) / n if n else 0.0
    # The exact part must not tell the worlds apart at all: each trial's own classifier is
    # a coin (or the majority), so anything clearly above a coin is a finding.
    exact_bound = 0.5 + 3 * math.sqrt(0.25 / n) if n else 1.0
    if n and exact > max(exact_bound, majority):
        zero = next(t for t in trials if t.world == 0)
        one = next(t for t in trials if t.world == 1)
        where = _first_difference(
            (exact_part(zero.before), exact_part(zero.after)),
            (exact_part(one.before), exact_part(one.after)),
        )
        violations.append(
            f"what the business sees beside the noisy release tells the worlds apart in "
            f"{exact:.0%} of {n} trials (a coin: 50%); first difference at {where}"
        )
    right = sum(guess(t.before, t.after) == t.world for t in trials)
    epsilon = max((t.epsilon for t in trials), default=0.0)
    bound = math.exp(epsilon) / (1 + math.exp(epsilon))
    allowed = bound + 3 * math.sqrt(bound * (1 - bound) / n) if n else 1.0
    accuracy = right / n if n else 0.0
    if n and accuracy > allowed:
        violations.append(
            f"the business guessed one person's choice right in {right} of {n} trials "
            f"({accuracy:.0%}); ε = {epsilon:g} allows {bound:.0%} (+ 3 standard errors: "
            f"{allowed:.0%})"
        )
    if n and not 0 < epsilon <= 1.0:
        violations.append(f"the businesses' budget view says they spent ε = {epsilon:g}")
    return make_check(
        "business_oracle",
        "A business with an audience of one and sock puppets learns no more than its ε",
        violations,
        f"{n} trials (a business, {PUPPETS} puppets that stopped its promotions, a target who "
        "did too and stayed offline, or took its marketing and read it): an audience of one "
        "and a padded campaign, every send result, reports, balance, ledger and their times "
        "before and after publication; the exact part must not tell the worlds apart "
        "(leave-one-out), the guess from everything must stay within e^ε/(1+e^ε) + 3 SE",
        measured=(
            f"what the business sees beside the noisy release tells the worlds apart in "
            f"{exact:.0%} of {n} trials (a coin: 50%); its guess from everything: "
            f"{accuracy:.0%} (ε = {epsilon:g} allows {bound:.0%}, fails above {allowed:.0%})"
            if exact > max(exact_bound, majority)
            else f"the business guesses the person's choice right {accuracy:.0%} of {n} trials "
            f"(chance 50%, ε = {epsilon:g} allows {bound:.0%}, fails above {allowed:.0%}); "
            f"what it sees beside the noisy release: {exact:.0%} (a coin: 50%)"
        ),
        trials=n,
        worlds=dict(by_world),
        guessed_right=right,
        epsilon_spent=epsilon,
        allowed_accuracy=round(allowed, 4),
        exact_part_accuracy=round(exact, 4),
    )


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two views first differ, as a path (``[1].budget.ledger[3].note``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return f"{path} ({len(a)} vs {len(b)} items)"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path or 'the view'}: {str(a)[:60]} vs {str(b)[:60]}"
