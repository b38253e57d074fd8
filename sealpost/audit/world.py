"""The audited world: persons, two businesses, campaigns and chats full of planted canaries.

:func:`plan_world` decides everything from the seed (who, which canaries, who blocks whom,
what each person does with each campaign, when each opens the app over five simulated days,
whose privacy budget is spent); :func:`seed_world` plays it against a relay through the real
client (``client.messenger.Messenger``, ``client.business.campaigns.run_campaign``) and
returns the ground truth the relay must not learn: the canaries, each report's true outcome
and the true counts per outcome, which token each person redeemed, and when each report left
its device.

Canaries are unique random strings that only ever exist inside sealed payloads (audience names,
coupon codes, phone numbers, chat texts). Every text canary contains the marker ``CANARY`` so
that any trace of one (even truncated) is found; phone numbers are found by their shape.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import run_campaign
from client.messenger import Messenger
from sealpost.audit.app_opens import Open, draw_opens
from sealpost.audit.fleet import Interactions, start_fleets
from sealpost.audit.timeline import ShufflerTimer, Timeline, play_reports
from shared.signals import REPORT_VALUES
from shared.templates import Button, TemplateDraft

# What a person may do with a campaign copy. The first three are what the app notes on the
# campaign's pending report (shared.signals.EVENTS), and the report carries the one outcome
# they amount to (shared.signals.outcome_of); the others are explicit choices, which reach
# the relay by name as preferences and are in no report.
INTERACTIONS = ("read", "clicked", "dismissed", "stopped_promotions", "blocked", "reported")
COUNTRIES = ("+39", "+44", "+49", "+33", "+34")

# Behaviour profiles: the probability of each interaction with a campaign message.
PROFILES: dict[str, dict[str, float]] = {
    "engaged": {"read": 0.95, "clicked": 0.45, "dismissed": 0.05, "stopped_promotions": 0.01},
    "casual": {
        "read": 0.7,
        "clicked": 0.1,
        "dismissed": 0.3,
        "stopped_promotions": 0.05,
        "blocked": 0.01,
        "reported": 0.01,
    },
    "ignores": {"read": 0.15, "clicked": 0.01, "dismissed": 0.6, "stopped_promotions": 0.02},
    "annoyed": {
        "read": 0.6,
        "dismissed": 0.3,
        "stopped_promotions": 0.5,
        "blocked": 0.25,
        "reported": 0.15,
    },
}
PROFILE_WEIGHTS = {"engaged": 0.2, "casual": 0.45, "ignores": 0.25, "annoyed": 0.1}
# Share of persons whose privacy budget is spent: their reports must still go (saying
# no_signal), or a missing report would tell the relay whose budget is spent.
BUDGET_SPENT_SHARE = 0.1

BUSINESSES = {
    "acme": ("ACME Shoes", "shop_acme"),
    "brio": ("Brio Caffe", "shop_brio"),
}
TEMPLATES = {
    "acme": TemplateDraft(
        name="spring_sale",
        category="marketing",
        body="Hi {{name}}, spring sale! Your code {{code}} takes 25% off. "
        "Questions? We call back at {{phone}}.",
        footer="ACME Shoes",
        buttons=[
            Button(type="url", text="Shop now", url="https://acme.example/sale"),
            Button(type="copy_code", text="Copy code"),
        ],
        examples={"name": "Ana", "code": "SPRING25", "phone": "+1 555 0100"},
    ),
    "brio": TemplateDraft(
        name="loyalty_offer",
        category="marketing",
        body="Ciao {{name}}, card {{card}} has a free coffee waiting. Order ahead on {{phone}}.",
        footer="Brio Caffe",
        examples={"name": "Ana", "card": "BR-0000", "phone": "+1 555 0100"},
    ),
}
# Campaign label -> the business that runs it. "small" goes to a handful of people: its
# figures must say no more about any one of them than the big campaigns' do.
CAMPAIGNS = {"acme_spring": "acme", "brio_loyalty": "brio", "brio_small": "brio"}
SMALL_AUDIENCE = 5


@dataclass
class PersonPlan:
    index: int
    handle: str
    country: str
    profile: str
    level_none: bool = False
    stops: list[str] = field(default_factory=list)  # businesses whose promotions are stopped
    blocks: list[str] = field(default_factory=list)  # businesses blocked before the campaigns
    # campaign label -> the template variables its business holds for this person (canaries)
    variables: dict[str, dict[str, str]] = field(default_factory=dict)
    # campaign label -> the interactions this person will have if the copy arrives
    behaviour: dict[str, list[str]] = field(default_factory=dict)
    # When this person has the app open, in seconds from the audit's start (app_opens.py)
    opens: list[Open] = field(default_factory=list)
    # This person's privacy budget is spent for these days (many campaigns lately): her
    # reports still go, saying no_signal, as the client sends them then.
    budget_spent: bool = False


@dataclass
class WorldPlan:
    seed: int
    persons: list[PersonPlan]
    # (sender handle, recipient handle, text): chats, every text a canary
    chats: list[tuple[str, str, str]]
    replies: list[tuple[str, str, str]]  # business replies within the service window

    def canaries(self) -> list[str]:
        found = [t for _, _, t in self.chats + self.replies]
        for person in self.persons:
            for variables in person.variables.values():
                found += variables.values()
        return found

    def person(self, handle: str) -> PersonPlan:
        return next(p for p in self.persons if p.handle == handle)


def canary(rng: random.Random, kind: str) -> str:
    """A unique text canary: the marker, its kind and 40 random bits."""
    return f"CANARY-{kind}-{rng.getrandbits(40):010x}"


def phone_number(rng: random.Random) -> str:
    """A canary phone number, found by its shape (+39 3xx xxxxxxx)."""
    return f"+39 3{rng.randrange(10, 100)} {rng.randrange(1_000_000, 10_000_000)}"


def plan_world(persons: int, seed: int) -> WorldPlan:
    """Everything the audit will do, decided by ``seed``."""
    rng = random.Random(seed)
    plans: list[PersonPlan] = []
    profiles, weights = zip(*PROFILE_WEIGHTS.items(), strict=True)
    for i in range(persons):
        plan = PersonPlan(
            index=i,
            handle=f"person{i:04d}",
            country=rng.choice(COUNTRIES),
            profile=rng.choices(profiles, weights)[0],
        )
        draw = rng.random()
        if draw < 0.04:
            plan.stops.append("acme")
        elif draw < 0.07:
            plan.blocks.append("brio")
        elif draw < 0.09:
            plan.level_none = True
        plan.variables = {
            "acme_spring": {
                "name": canary(rng, "NAME"),
                "code": canary(rng, "CODE"),
                "phone": phone_number(rng),
            },
            "brio_loyalty": {
                "name": canary(rng, "NAME"),
                "card": canary(rng, "CARD"),
                "phone": phone_number(rng),
            },
        }
        rates = PROFILES[plan.profile]
        for label in CAMPAIGNS:
            plan.behaviour[label] = [e for e in INTERACTIONS if rng.random() < rates.get(e, 0.0)]
        # Every tenth person, not a draw: a small world must have some too.
        plan.budget_spent = i % round(1 / BUDGET_SPENT_SHARE) == 3
        # A stream of its own per person, so that the opens do not shift the other draws.
        plan.opens = draw_opens(random.Random(f"{seed}:opens:{i}"))
        plans.append(plan)
    # The small campaign: a handful of recipients, among those brio may reach.
    reachable = [p for p in plans if not (p.blocks or p.level_none)]
    for plan in rng.sample(reachable, min(len(reachable), SMALL_AUDIENCE)):
        plan.variables["brio_small"] = {
            "name": canary(rng, "NAME"),
            "card": canary(rng, "CARD"),
            "phone": phone_number(rng),
        }
    chats: list[tuple[str, str, str]] = []
    replies: list[tuple[str, str, str]] = []
    for _ in range(max(3, persons // 20)):
        a, b = rng.sample(plans, 2)
        chats.append((a.handle, b.handle, f"{canary(rng, 'CHAT')} dinner at 8, table for two"))
        chats.append((b.handle, a.handle, f"{canary(rng, 'CHAT')} call me on {phone_number(rng)}"))
    for _ in range(max(2, persons // 50)):
        person = rng.choice(plans)
        business = rng.choice(sorted(BUSINESSES))
        chats.append(
            (
                person.handle,
                business,
                f"{canary(rng, 'CHAT')} my order, reach me {phone_number(rng)}",
            )
        )
        replies.append(
            (business, person.handle, f"{canary(rng, 'CHAT')} your order ships tomorrow")
        )
    return WorldPlan(seed=seed, persons=plans, chats=chats, replies=replies)


@dataclass
class Redemption:
    """Ground truth the relay must not be able to reconstruct: whose token is whose."""

    handle: str
    campaign_id: str
    token_input: str  # base64, as in the report
    send_after: int  # when the client scheduled the report (unix s)
    # What the audit's own world also knows (None or unset in the simulator's):
    true_outcome: str | None = None  # what the person did (shared.signals.OUTCOMES)
    budget_spent: bool = False  # the device's budget was spent: its report says no_signal
    sent_at: float | None = None  # when the report left the device (unix s, simulated)


@dataclass
class WorldResult:
    campaigns: dict[str, str]  # label -> campaign id
    businesses: list[str]
    handles: list[str]
    message_ids: list[str]
    canaries: list[str]
    # campaign id -> report value -> true count among the people who sent a report: per
    # outcome (shared.signals.OUTCOMES) among the reports that carry a signal, and under
    # no_signal those that carry none (signals off, or the budget spent)
    true_counts: dict[str, dict[str, int]]
    reporters: dict[str, int]  # campaign id -> reports sent
    redemptions: list[Redemption]
    # campaign id -> CampaignReport as the business sees it, once its figures are published
    published: dict[str, dict[str, Any]]
    budgets: dict[str, dict[str, Any]]  # business -> BudgetView (the ledger) at the end
    targeted: dict[str, int]  # campaign id -> copies accepted
    anonymous_requests: int
    timings: dict[str, float]
    # The audit's own world: simulated time (None in the simulator's, which has no opens)
    start: float = 0.0  # unix s: the campaigns went out, and simulated time began
    timeline: Timeline | None = None


async def seed_world(
    plan: WorldPlan,
    relay_url: str,
    home: Path,
    shuffler: ShufflerTimer,
    shuffler_url: str,
    start: float,
    workers: int = 0,
    publish: Callable[[], Awaitable[None]] | None = None,
    plant: str | None = None,
) -> WorldResult:
    """Play ``plan`` against the relay at ``relay_url`` with real clients in ``home``.

    The persons are played on ``workers`` processes (0: in this one); the businesses always
    run here. The campaigns go out at ``start`` (unix s, the relay's clock); from then on the
    persons live in simulated time: each receives its copies when it first opens the app,
    and sends its reports, through the shuffler at ``shuffler_url``, at moments its client
    picks while the app is open (``timeline.py``); the shuffler's timer is played by
    ``shuffler``. ``publish`` is awaited once every report reached the relay, before the
    businesses read their campaign reports: it brings the relay to the time the figures are
    due (they are published once, days after the send time). ``plant``: a device plant
    (plants.py) to put in place on the persons' devices.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        timings[name] = round(now - started, 3)
        started = now

    async def on_every_fleet(method: str, *args: Any) -> list[Any]:
        return await asyncio.gather(*(fleet.call(method, *args) for fleet in fleets))

    shops: dict[str, Messenger] = {}
    fleets = start_fleets(plan, workers, relay_url, home, shuffler_url, plant)
    try:
        for handle, (display, profile) in BUSINESSES.items():
            shops[handle] = await Messenger.create_account(
                home, profile, handle, relay_url, business=True, display_name=display
            )
        await on_every_fleet("register")
        lap("register")

        await on_every_fleet("send_chats", plan.chats)
        for business, shop in shops.items():
            await shop.sync()
            for sender, recipient, text in plan.replies:
                if sender == business:
                    await shop.send_text(recipient, text)
        await on_every_fleet("set_choices")
        lap("chats_and_choices")

        campaigns: dict[str, str] = {}
        targeted: dict[str, int] = {}
        for business, shop in shops.items():
            await shop.api.top_up(10**12)
            template = await shop.api.register_template(TEMPLATES[business])
            for label, owner in CAMPAIGNS.items():
                if owner != business:
                    continue
                rows = [
                    AudienceRow(line=i + 2, handle=p.handle, variables=p.variables[label])
                    for i, p in enumerate(x for x in plan.persons if label in x.variables)
                ]
                run = await run_campaign(
                    shop.api,
                    shop.profile.keys,
                    business,
                    template,
                    Audience(rows=rows),
                    budget=10**11,
                    name=label,
                )
                campaigns[label] = run.campaign.id
                targeted[run.campaign.id] = run.accepted
        lap("campaigns")

        await on_every_fleet("deliver", start)
        lap("sync_and_tokens")

        label_of = {cid: label for label, cid in campaigns.items()}
        found = Interactions(
            true_counts={cid: dict.fromkeys(REPORT_VALUES, 0) for cid in campaigns.values()}
        )
        for part in await on_every_fleet("interact", label_of, CAMPAIGNS):
            found.merge(part)
        lap("interactions")

        # Simulated days pass: each report leaves at its own moment, while its app is open,
        # and the shuffler forwards once it holds B (a random moment within its hold time).
        rng = random.Random(f"{plan.seed}:shuffler-timer")
        timeline = await play_reports(fleets, shuffler, start, rng)
        sent_at = {r.token_input: r.at for r in timeline.sent}
        lap("reports")

        if publish is not None:
            await publish()
            lap("figures")
        published = {}
        for label, cid in campaigns.items():
            shop = shops[CAMPAIGNS[label]]
            published[cid] = (await shop.api.campaign(cid)).model_dump(mode="json")
        budgets = {
            handle: (await shop.api.budget()).model_dump(mode="json")
            for handle, shop in shops.items()
        }
        message_ids = set(_message_ids(list(shops.values())))
        for ids in await on_every_fleet("message_ids"):
            message_ids.update(ids)
        lap("analytics")
        return WorldResult(
            campaigns=campaigns,
            businesses=sorted(shops),
            handles=sorted([p.handle for p in plan.persons] + list(shops)),
            message_ids=sorted(message_ids),
            canaries=plan.canaries(),
            true_counts=found.true_counts,
            reporters=dict(found.reporters),
            redemptions=[
                Redemption(
                    handle=r.handle,
                    campaign_id=r.campaign_id,
                    token_input=r.token_input,
                    send_after=r.send_after,
                    true_outcome=r.true_outcome,
                    budget_spent=r.budget_spent,
                    sent_at=sent_at.get(r.token_input),
                )
                for r in found.redemptions
            ],
            published=published,
            budgets=budgets,
            targeted=targeted,
            anonymous_requests=len(timeline.sent),
            timings=timings,
            start=start,
            timeline=timeline,
        )
    finally:
        await asyncio.gather(*(fleet.aclose() for fleet in fleets))
        for shop in shops.values():
            await shop.aclose()


def _message_ids(messengers: list[Messenger]) -> list[str]:
    from sqlmodel import select

    from client.store import StoredMessage

    ids: set[str] = set()
    for messenger in messengers:
        with messenger.store.session() as s:
            ids.update(s.exec(select(StoredMessage.msg_id)))
    return sorted(ids)
