"""The simulated population, decided entirely by the seed before anything runs.

Persons get a country, a behaviour profile (how often they read, click, dismiss, stop
promotions, block, report: ``sealpost.audit.world.PROFILES``; what they do with one copy
amounts to one outcome, :func:`outcome_of_actions`), a marketing level drawn from the
researcher's mix, and a few choices made before the week (promotions stopped or a business
blocked, as in the audit's world; interaction signals switched off on a share of devices,
drawn apart so that the share changes nothing else). Some write to businesses first, which
is what the ``chatted`` level needs; with ``--accepts``, customers accepted their businesses'
messages (so message requests do not cap them). Businesses each get a customer list and a marketing
template, and are welcome or spammy (a spammy one writes to nearly everyone, and people
dismiss most of its marketing: :func:`reception`); campaigns are spread over the simulated
days, each at a business hour, each to part of its business's customers, with personalised
variables that are planted canaries. What every recipient will do with every copy, should it
arrive, is drawn here too: so the same seed plays the same week, whatever the timing of the
run.
"""

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sealpost.audit.world import (
    COUNTRIES,
    PROFILE_WEIGHTS,
    PROFILES,
    TEMPLATES,
    canary,
    phone_number,
)
from sealpost.sim.config import Level, SimOptions
from shared.signals import EVENTS, Event, Outcome, outcome_of
from shared.templates import TemplateDraft, variable_names

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# The simulated week starts on Monday 4 January 2027, 00:00 UTC. A fixed date keeps report
# days and the summary identical from run to run; the relay's manual clock starts there.
EPOCH_MS = int(datetime(2027, 1, 4, tzinfo=UTC).timestamp() * 1000)
BUSINESS_HOURS = range(8, 20)

# (handle, display name); beyond these, shopNN.
BUSINESS_NAMES = (
    ("acme", "ACME Shoes"),
    ("brio", "Brio Caffe"),
    ("cielo", "Cielo Travel"),
    ("dune", "Dune Books"),
    ("eko", "Eko Market"),
    ("fjord", "Fjord Outdoor"),
    ("gala", "Gala Tickets"),
    ("hana", "Hana Flowers"),
)
# Each business reuses one of the audit's two template shapes, with its own footer.
TEMPLATE_SHAPES = tuple(TEMPLATES.values())
# What a person may do with a campaign copy, drawn in this order from their profile's rates.
# The first three are noted on the device's pending report (shared.signals.EVENTS) and
# amount to its one outcome; a stop or a block is an explicit choice the relay gets by name;
# a report (of abuse) is drawn but has no call of its own in the simulation.
ACTIONS = ("read", "clicked", "dismissed", "stopped_promotions", "blocked", "reported")


# How people take a business's marketing, on top of their own habits. A welcome business's
# copies are dismissed, stopped and blocked far less than the person's profile alone says;
# a spammy one's at least at these rates (and hardly ever clicked), whoever gets them.
WELCOME_SCALE = {"dismissed": 0.3, "stopped_promotions": 0.2, "blocked": 0.2, "reported": 0.2}
# Most people dismiss spam and move on; few take the trouble to stop or block it, so it
# keeps reaching them unless the platform acts on what the dismissals say.
SPAMMY_FLOOR = {"dismissed": 0.7, "stopped_promotions": 0.03, "blocked": 0.02, "reported": 0.02}
SPAMMY_CLICKS = 0.05  # of the person's own click rate
Kind = Literal["welcome", "spammy"]


def reception(rates: dict[str, float], kind: Kind) -> dict[str, float]:
    """A person's profile ``rates``, as they take one business's marketing."""
    if kind == "welcome":
        return {a: r * WELCOME_SCALE.get(a, 1.0) for a, r in rates.items()}
    taken = {a: max(rates.get(a, 0.0), floor) for a, floor in SPAMMY_FLOOR.items()}
    return rates | taken | {"clicked": rates.get("clicked", 0.0) * SPAMMY_CLICKS}


def actions_drawn(rng: random.Random, rates: dict[str, float]) -> tuple[str, ...]:
    """What one person does with one copy, from their profile's ``rates``."""
    return tuple(a for a in ACTIONS if rng.random() < rates.get(a, 0.0))


def events_of_actions(actions: tuple[str, ...] | list[str]) -> tuple[Event, ...]:
    """The actions the device notes on the pending report (read, clicked, dismissed)."""
    return tuple(a for a in actions if a in EVENTS)  # type: ignore[misc]


def outcome_of_actions(actions: tuple[str, ...] | list[str]) -> Outcome:
    """The one outcome a person's actions amount to: clicked, else dismissed, else read,
    else not_read (stops and blocks are not outcomes)."""
    return outcome_of(events_of_actions(actions))


def outcome_drawn(rng: random.Random, rates: dict[str, float]) -> Outcome:
    """One person's true outcome with one copy, drawn as :func:`plan` draws it."""
    return outcome_of_actions(actions_drawn(rng, rates))


@dataclass(frozen=True)
class Business:
    handle: str
    label: str  # the handle without the run's prefix, for reports
    display_name: str
    template: TemplateDraft
    kind: Kind = "welcome"


@dataclass
class Person:
    index: int
    handle: str
    country: str
    profile: str  # a key of PROFILES
    level: Level
    stops: list[str] = field(default_factory=list)  # businesses whose promotions are stopped
    blocks: list[str] = field(default_factory=list)  # businesses blocked before the week
    writes_to: list[str] = field(default_factory=list)  # businesses written to before the week
    accepts: list[str] = field(default_factory=list)  # businesses accepted before the week
    signals_off: bool = False  # interaction signals switched off: every report says no_signal


@dataclass
class Campaign:
    label: str  # e.g. "acme_2": the business's second campaign
    business: str  # handle
    day: int  # 0-based day of the simulated week
    send_at_ms: int  # virtual unix ms
    audience: list[str]  # person handles, in the order of the business's audience file
    variables: dict[str, dict[str, str]]  # handle -> template variables (canaries)


@dataclass
class SimPlan:
    options: SimOptions
    persons: list[Person]
    businesses: list[Business]
    campaigns: list[Campaign]  # in order of send time
    # (person handle, campaign label) -> what the person does with the copy if it arrives
    behaviour: dict[tuple[str, str], tuple[str, ...]]
    chats: list[tuple[str, str, str]]  # (sender, recipient, text) before the week starts
    replies: list[tuple[str, str, str]]  # businesses answering within the service window

    @property
    def start_ms(self) -> int:
        return EPOCH_MS

    @property
    def end_ms(self) -> int:
        return EPOCH_MS + self.options.days * DAY_MS

    def person(self, handle: str) -> Person:
        return self._persons[handle]

    def business(self, handle: str) -> Business:
        return next(b for b in self.businesses if b.handle == handle)

    def campaign(self, label: str) -> Campaign:
        return next(c for c in self.campaigns if c.label == label)

    def __post_init__(self) -> None:
        self._persons = {p.handle: p for p in self.persons}

    def canaries(self) -> list[str]:
        found = [text for _, _, text in self.chats + self.replies]
        for campaign in self.campaigns:
            for variables in campaign.variables.values():
                found += variables.values()
        return found

    def describe(self) -> dict[str, Any]:
        """The population in figures, for the summary."""
        return {
            "persons": len(self.persons),
            "businesses": [b.label for b in self.businesses],
            "spammy": [b.label for b in self.businesses if b.kind == "spammy"],
            "profiles": dict(sorted(Counter(p.profile for p in self.persons).items())),
            "levels": dict(sorted(Counter(p.level.label for p in self.persons).items())),
            "promotions_stopped_before": sum(bool(p.stops) for p in self.persons),
            "blocked_before": sum(bool(p.blocks) for p in self.persons),
            "wrote_to_a_business": sum(bool(p.writes_to) for p in self.persons),
            "accepted_a_business": sum(bool(p.accepts) for p in self.persons),
            "signals_off": sum(p.signals_off for p in self.persons),
            "campaigns": len(self.campaigns),
            "copies_planned": sum(len(c.audience) for c in self.campaigns),
            "chat_messages": len(self.chats) + len(self.replies),
        }


def _variables(rng: random.Random, names: list[str]) -> dict[str, str]:
    return {
        name: phone_number(rng) if name == "phone" else canary(rng, name.upper()) for name in names
    }


def _businesses(count: int, prefix: str, spammy: int = 0) -> list[Business]:
    """``count`` businesses; the last ``spammy`` of them are spammy."""
    made = []
    for i in range(count):
        label, display = (
            BUSINESS_NAMES[i] if i < len(BUSINESS_NAMES) else (f"shop{i + 1:02d}", f"Shop {i + 1}")
        )
        shape = TEMPLATE_SHAPES[i % len(TEMPLATE_SHAPES)]
        template = shape.model_copy(update={"footer": display})
        kind: Kind = "spammy" if i >= count - spammy else "welcome"
        made.append(Business(f"{prefix}{label}", label, display, template, kind))
    return made


def plan(options: SimOptions, prefix: str = "") -> SimPlan:
    """Everything the run will do, from ``options.seed``. ``prefix`` goes before every handle
    (a run against an existing relay must not collide with accounts already there)."""
    rng = random.Random(options.seed)
    businesses = _businesses(options.businesses, prefix, options.effective_spammy)
    handles = [b.handle for b in businesses]
    profiles, profile_weights = zip(*PROFILE_WEIGHTS.items(), strict=True)
    levels, level_weights = zip(*options.levels.items(), strict=True)
    width = max(4, len(str(options.persons - 1)))
    # A generator of its own, so that the share of signals switched off changes nothing else.
    signals_rng = random.Random(f"{options.seed}:signals")
    persons: list[Person] = []
    for i in range(options.persons):
        person = Person(
            index=i,
            handle=f"{prefix}person{i:0{width}d}",
            country=rng.choice(COUNTRIES),
            profile=rng.choices(profiles, profile_weights)[0],
            level=Level.parse(rng.choices(levels, level_weights)[0]),
            signals_off=signals_rng.random() < options.signals_off,
        )
        draw = rng.random()
        if draw < 0.04:
            person.stops.append(rng.choice(handles))
        elif draw < 0.07:
            person.blocks.append(rng.choice(handles))
        # A "chatted" person mostly hears from businesses they wrote to; write to some.
        writes = rng.random() < (0.6 if person.level.level == "chatted" else 0.05)
        if writes:
            person.writes_to = rng.sample(handles, min(len(handles), rng.choice((1, 1, 2))))
        persons.append(person)

    # Customer lists: each business knows part of the population.
    customers = {}
    # A generator of its own: who accepted whom changes no other draw.
    accepts_rng = random.Random(f"{options.seed}:accepts")
    by_handle = {p.handle: p for p in persons}
    for business in businesses:
        # A spammy business writes to nearly everyone (a bought list), a welcome one to
        # the people who are its customers.
        share = rng.uniform(0.9, 1.0) if business.kind == "spammy" else rng.uniform(0.5, 0.9)
        customers[business.handle] = [p.handle for p in persons if rng.random() < share]
        for handle in customers[business.handle]:
            if accepts_rng.random() < options.accepts:
                by_handle[handle].accepts.append(business.handle)

    campaigns: list[Campaign] = []
    behaviour: dict[tuple[str, str], tuple[str, ...]] = {}
    runs: Counter[str] = Counter()
    names = {b.handle: variable_names(b.template) for b in businesses}
    profile_of = {p.handle: p.profile for p in persons}
    for c in range(options.campaigns):
        business = businesses[c % len(businesses)]
        runs[business.handle] += 1
        day = c * options.days // options.campaigns
        send_at = (
            EPOCH_MS
            + day * DAY_MS
            + rng.choice(BUSINESS_HOURS) * HOUR_MS
            + rng.choice((0, 15, 30, 45)) * 60_000
        )
        reach = rng.uniform(0.9, 1.0) if business.kind == "spammy" else rng.uniform(0.6, 1.0)
        audience = [h for h in customers[business.handle] if rng.random() < reach]
        if not audience:  # a tiny population: a campaign needs at least one recipient
            audience = [rng.choice(persons).handle]
        campaign = Campaign(
            label=f"{business.label}_{runs[business.handle]}",
            business=business.handle,
            day=day,
            send_at_ms=send_at,
            audience=audience,
            variables={h: _variables(rng, names[business.handle]) for h in audience},
        )
        for handle in audience:
            rates = reception(PROFILES[profile_of[handle]], business.kind)
            behaviour[(handle, campaign.label)] = actions_drawn(rng, rates)
        campaigns.append(campaign)
    campaigns.sort(key=lambda c: (c.send_at_ms, c.label))

    chats: list[tuple[str, str, str]] = []
    replies: list[tuple[str, str, str]] = []
    for person in persons:
        for business_handle in person.writes_to:
            chats.append(
                (
                    person.handle,
                    business_handle,
                    f"{canary(rng, 'CHAT')} is my order ready? call {phone_number(rng)}",
                )
            )
    for _ in range(max(3, options.persons // 20)):
        a, b = rng.sample(persons, 2)
        chats.append((a.handle, b.handle, f"{canary(rng, 'CHAT')} lunch on friday?"))
        chats.append((b.handle, a.handle, f"{canary(rng, 'CHAT')} yes, call {phone_number(rng)}"))
    # Replies go to people who wrote and did not block the business (a blocked business's
    # message is accepted but never delivered: that is the block working, not a loss).
    blocked = {(p.handle, b) for p in persons for b in p.blocks}
    writers = [(s, r) for s, r, _ in chats if r in customers and (s, r) not in blocked]
    for sender, business_handle in rng.sample(writers, min(len(writers), 5)):
        replies.append(
            (business_handle, sender, f"{canary(rng, 'CHAT')} your order ships tomorrow")
        )
    return SimPlan(
        options=options,
        persons=persons,
        businesses=businesses,
        campaigns=campaigns,
        behaviour=behaviour,
        chats=chats,
        replies=replies,
    )
