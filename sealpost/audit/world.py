"""The audited world: persons, two businesses, campaigns and chats full of planted canaries.

:func:`plan_world` decides everything from the seed (who, which canaries, who blocks whom,
what each person does with each campaign); :func:`seed_world` plays it against a relay through
the real client (``client.messenger.Messenger``, ``client.business.campaigns.run_campaign``)
and returns the ground truth the relay must not learn: the canaries, the true interaction
counts, and which token each person redeemed.

Canaries are unique random strings that only ever exist inside sealed payloads (audience names,
coupon codes, phone numbers, chat texts). Every text canary contains the marker ``CANARY`` so
that any trace of one (even truncated) is found; phone numbers are found by their shape.
"""

import asyncio
import gc
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import run_campaign
from client.messenger import Messenger
from client.signals import PendingSignal
from shared.signals import EVENTS
from shared.templates import Button, TemplateDraft

# Clients in flight at once. Higher does not go faster: the relay is CPU-bound (token
# evaluation and per-request signature and nonce checks) and SQLite serialises writers.
CONCURRENCY = 10
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
# Campaign label -> the business that runs it. "small" goes to fewer than k people.
CAMPAIGNS = {"acme_spring": "acme", "brio_loyalty": "brio", "brio_small": "brio"}


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


@dataclass
class WorldPlan:
    seed: int
    k: int
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


def plan_world(persons: int, seed: int, k: int) -> WorldPlan:
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
        plans.append(plan)
    # The small campaign: fewer than k recipients, among those brio may reach.
    reachable = [p for p in plans if not (p.blocks or p.level_none)]
    for plan in rng.sample(reachable, min(len(reachable), max(1, k - 2))):
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
    return WorldPlan(seed=seed, k=k, persons=plans, chats=chats, replies=replies)


@dataclass
class Redemption:
    """Ground truth the relay must not be able to reconstruct: whose token is whose."""

    handle: str
    campaign_id: str
    token_input: str  # base64, as in the report
    send_after: int  # when the client scheduled the report (unix s)


@dataclass
class WorldResult:
    campaigns: dict[str, str]  # label -> campaign id
    businesses: list[str]
    handles: list[str]
    message_ids: list[str]
    canaries: list[str]
    # campaign id -> event -> true count among the people who sent a report
    true_counts: dict[str, dict[str, int]]
    reporters: dict[str, int]  # campaign id -> reports sent
    redemptions: list[Redemption]
    published: dict[str, dict[str, Any]]  # campaign id -> CampaignReport as the business sees it
    targeted: dict[str, int]  # campaign id -> copies accepted
    anonymous_requests: int
    timings: dict[str, float]


async def gather_chunks(coros: list[Any], size: int = CONCURRENCY) -> list[Any]:
    """Await ``coros`` ``size`` at a time; results in order."""
    results: list[Any] = []
    for i in range(0, len(coros), size):
        results += await asyncio.gather(*coros[i : i + size])
    return results


async def seed_world(plan: WorldPlan, relay_url: str, home: Path) -> WorldResult:
    """Play ``plan`` against the relay at ``relay_url`` with real clients in ``home``."""
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        timings[name] = round(now - started, 3)
        started = now

    shops: dict[str, Messenger] = {}
    people: dict[str, Messenger] = {}
    try:
        for handle, (display, profile) in BUSINESSES.items():
            shops[handle] = await Messenger.create_account(
                home, profile, handle, relay_url, business=True, display_name=display
            )
        made = await gather_chunks(
            [
                Messenger.create_account(
                    home,
                    p.handle,
                    p.handle,
                    relay_url,
                    country=p.country,
                    display_name=f"Person {p.index}",
                )
                for p in plan.persons
            ]
        )
        people = {m.profile.handle: m for m in made}
        for p in plan.persons:
            # Each simulated device draws its report delays and randomized response from a
            # seeded source, so that a run is reproducible (production uses SystemRandom).
            people[p.handle].signals._rng = random.Random(f"{plan.seed}:{p.handle}")
        lap("register")
        # Thousands of simulated devices stay open; keep the collector from rescanning them.
        gc.freeze()

        everyone = {**people, **shops}
        for sender, recipient, text in plan.chats:
            await everyone[sender].send_text(recipient, text)
        for business, shop in shops.items():
            await shop.sync()
            for sender, recipient, text in plan.replies:
                if sender == business:
                    await shop.send_text(recipient, text)
        choices = []
        for p in plan.persons:
            api = people[p.handle].api
            choices += [api.set_choice("promotions-stopped", b, True) for b in p.stops]
            choices += [api.set_choice("blocked", b, True) for b in p.blocks]
            if p.level_none:
                from shared.api import SetLevel

                choices.append(api.set_level(SetLevel(level="none")))
        await gather_chunks(choices)
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

        await gather_chunks([m.sync() for m in people.values()])
        lap("sync_and_tokens")

        label_of = {cid: label for label, cid in campaigns.items()}
        true_counts = {cid: dict.fromkeys(EVENTS, 0) for cid in campaigns.values()}
        reporters: Counter[str] = Counter()
        pending: list[tuple[int, str, str]] = []  # (send_after, handle, campaign id)
        redemptions: list[Redemption] = []
        after_choices = []
        for p in plan.persons:
            person = people[p.handle]
            with person.store.session() as s:
                rows = list(s.exec(_pending_query()))
            for row in rows:
                events = p.behaviour[label_of[row.campaign_id]]
                for event in events:
                    person.signals.record(row.campaign_id, event)  # type: ignore[arg-type]
                business = CAMPAIGNS[label_of[row.campaign_id]]
                if "blocked" in events:
                    after_choices.append(person.api.set_choice("blocked", business, True))
                elif "stopped_promotions" in events:
                    after_choices.append(
                        person.api.set_choice("promotions-stopped", business, True)
                    )
                reporters[row.campaign_id] += 1
                true_counts[row.campaign_id]["delivered"] += 1
                for event in events:
                    true_counts[row.campaign_id][event] += 1
                pending.append((row.send_after, p.handle, row.campaign_id))
                redemptions.append(
                    Redemption(
                        handle=p.handle,
                        campaign_id=row.campaign_id,
                        token_input=row.token_input,
                        send_after=row.send_after,
                    )
                )
        await gather_chunks(after_choices)
        lap("interactions")

        # Time passes. Each person's client wakes once, when the last of its reports is due
        # (as `sealpost inbox` does), and sends what is due then in one anonymous request;
        # people are taken in the order of those moments.
        latest: dict[str, int] = {}
        for send_after, handle, _ in pending:
            latest[handle] = max(latest.get(handle, 0), send_after)
        anonymous = 0
        due = sorted(latest, key=lambda h: (latest[h], h))
        sent = await gather_chunks(
            [people[h].signals.flush(now=latest[h]) for h in due]
        )  # a few at a time, in the order of their moments
        anonymous += sum(result is not None for result in sent)
        for person in people.values():  # nothing may be left behind
            anonymous += await person.signals.flush(now=2e10) is not None
        lap("reports")

        published = {}
        for label, cid in campaigns.items():
            shop = shops[CAMPAIGNS[label]]
            published[cid] = (await shop.api.campaign(cid)).model_dump(mode="json")
        message_ids = _message_ids([*people.values(), *shops.values()])
        lap("analytics")
        return WorldResult(
            campaigns=campaigns,
            businesses=sorted(shops),
            handles=sorted(everyone),
            message_ids=message_ids,
            canaries=plan.canaries(),
            true_counts=true_counts,
            reporters=dict(reporters),
            redemptions=redemptions,
            published=published,
            targeted=targeted,
            anonymous_requests=anonymous,
            timings=timings,
        )
    finally:
        for messenger in (*people.values(), *shops.values()):
            await messenger.aclose()


def _pending_query() -> Any:
    from sqlmodel import select

    return select(PendingSignal).where(PendingSignal.sent == False)  # noqa: E712


def _message_ids(messengers: list[Messenger]) -> list[str]:
    from sqlmodel import select

    from client.store import StoredMessage

    ids: set[str] = set()
    for messenger in messengers:
        with messenger.store.session() as s:
            ids.update(s.exec(select(StoredMessage.msg_id)))
    return sorted(ids)
