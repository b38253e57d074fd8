"""The curious relay's timing attack: which report is hers, from when things happened?

Played on simulated days of app opens (``app_opens.py``, ``timeline.py``), not compressed
time. What the relay sees: every account's signed requests and their times (the app syncs
each time it opens; the open that delivered a campaign copy also asks for its token, naming
the campaign), and each shuffler batch: when it arrived, and its reports (each names its
campaign) in the shuffler's order. What it wants: the report of a given person.

Its strategies guess the batch request holding her report for a campaign, and then any of
that campaign's reports in it:

- ``after_delivery``: the first batch after her copy's delivery (the receipt-timing attack
  on sealed sender: a report sent soon after delivery lands there);
- ``after_opens``: the batch the declared rule makes likeliest from her app opens (a report
  leaves only while her app is open, and the longer it was closed, the likelier a report
  fell due meanwhile);
- ``together``: her reports for different campaigns in one batch request (sent together).

Advantage over chance: the accuracy of naming her report (1/k for the right batch holding k
of the campaign's reports) against a guess among all of the campaign's reports (1/n). The
design itself leaks some timing (reports leave while the app is open, and the relay sees the
opens): how much is measured by playing the *declared* rule (docs/privacy-boundary.md §7:
uniform over the day after delivery, a minute's quiet after a signed request, 30 s plus an
exponential gap of mean 270 s between reports, a shuffler holding B and firing within its
hold time) on the same opens: the reference. A strategy fails when it hits on the audited
devices more often than on the reference by over 4.5 standard errors. So do batches smaller
than B (but the declared last one) and an order within batches that follows sending order.
"""

import bisect
import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sealpost.audit.app_opens import TICK_S, Open, first_open_from, tick_at_or_after
from sealpost.audit.checks import Check, make_check
from sealpost.audit.recorder import Exchange
from sealpost.audit.stats import histogram, spearman
from sealpost.audit.timeline import Timeline
from sealpost.audit.world import WorldResult
from shared.shuffled import SHUFFLED_PATH
from shared.signals import InvalidReport, decode_report

# Standard errors a strategy may exceed the reference by before the check fails: a false
# alarm about one in 300,000 per strategy, a planted leak of the kinds in plants.py far past it.
Z = 4.5
REFERENCE_DRAWS = 8


@dataclass(frozen=True)
class DeclaredRule:
    """When a device sends its reports, as docs/privacy-boundary.md §7 declares it (and
    ``client.signals.SignalSettings`` defaults to: a unit test keeps the two equal)."""

    max_delay_s: float = 86_400.0
    quiet_after_signed_s: float = 60.0
    min_gap_s: float = 30.0
    mean_extra_gap_s: float = 270.0


DECLARED = DeclaredRule()


@dataclass(frozen=True)
class Person:
    """One account as the relay sees its timing, and (for the reference) its opens."""

    handle: str
    delivered_at: float  # the open that delivered its copies and asked for their tokens
    opens: tuple[Open, ...]  # absolute unix s, from the delivering open on
    campaigns: tuple[str, ...]  # the campaigns it received (and so reports on)


@dataclass(frozen=True)
class Batch:
    """One batch request at the relay: when it arrived, and its reports in order, each as
    (campaign, sender) where the sender is ground truth the relay does not see."""

    at: float
    reports: tuple[tuple[str, str], ...]


@dataclass
class Hits:
    """How one strategy did: right guesses, and the expected accuracy naming a report."""

    n: int = 0
    hits: int = 0
    accuracy: float = 0.0  # sum of 1/k over right guesses (divided by n when read)
    chance: float = 0.0  # sum of 1/n_c (divided by n when read)

    def rate(self) -> float:
        return self.hits / self.n if self.n else 0.0

    def add(self, right: bool, k: int, n_campaign: int) -> None:
        self.n += 1
        self.hits += right
        self.accuracy += 1 / k if right and k else 0.0
        self.chance += 1 / n_campaign if n_campaign else 0.0


@dataclass
class Outcome:
    strategies: dict[str, Hits] = field(default_factory=dict)


STRATEGIES = ("after_delivery", "after_opens", "together")


def attack(persons: Sequence[Person], batches: Sequence[Batch], rule: DeclaredRule) -> Outcome:
    """Every strategy against every person, scored with the ground truth."""
    times = [b.at for b in batches]
    where: dict[tuple[str, str], int] = {}
    per_batch: list[Counter[str]] = []
    for i, batch in enumerate(batches):
        per_batch.append(Counter(c for c, _ in batch.reports))
        for campaign, sender in batch.reports:
            where[(sender, campaign)] = i
    n_campaign = Counter(c for _, c in where)
    outcome = Outcome({name: Hits() for name in STRATEGIES})

    def first_batch_from(moment: float) -> int | None:
        i = bisect.bisect_left(times, moment)
        return i if i < len(times) else None

    for person in persons:
        starts = [start for start, _ in person.opens]
        found = [where[(person.handle, c)] for c in person.campaigns if (person.handle, c) in where]
        for campaign in person.campaigns:
            truth = where.get((person.handle, campaign))
            if truth is None:
                continue
            n = n_campaign[campaign]
            guess = first_batch_from(person.delivered_at + TICK_S)
            k = per_batch[guess][campaign] if guess is not None else 0
            outcome.strategies["after_delivery"].add(guess == truth, k, n)
            guess = _likeliest_after_opens(person, starts, campaign, per_batch, times, rule)
            k = per_batch[guess][campaign] if guess is not None else 0
            outcome.strategies["after_opens"].add(guess == truth, k, n)
        if len(found) >= 2:
            together = len(set(found)) == 1
            outcome.strategies["together"].add(together, len(batches[found[0]].reports), 0)
    return outcome


def _likeliest_after_opens(
    person: Person,
    starts: list[float],
    campaign: str,
    per_batch: list[Counter[str]],
    times: list[float],
    rule: DeclaredRule,
) -> int | None:
    """The batch most likely to hold one given report of this campaign from this person:
    her report was due at a uniform moment in the day after delivery and left at her first
    open after that, so an open carries the share of that day since her previous open; it
    lands in the first batch after the open (then 1/k per report of the campaign there)."""
    mass: dict[int, float] = defaultdict(float)
    previous = person.delivered_at
    for start in starts:
        share = max(0.0, min(start, person.delivered_at + rule.max_delay_s) - previous)
        previous = max(previous, start)
        i = bisect.bisect_left(times, start + TICK_S)
        if share > 0 and i < len(times) and per_batch[i][campaign]:
            mass[i] += share / per_batch[i][campaign]
    return max(mass, key=mass.__getitem__) if mass else None


# --- the reference: the declared rule, played on the same opens ---------------------------------


def declared_sends(
    persons: Sequence[Person], rule: DeclaredRule, rng: random.Random, end: float
) -> list[tuple[float, str, str]]:
    """When each report leaves under the declared rule: (moment, handle, campaign)."""
    sends: list[tuple[float, str, str]] = []
    for person in persons:
        due = sorted(
            (person.delivered_at + rng.uniform(0, rule.max_delay_s), c) for c in person.campaigns
        )
        next_report_at = 0.0
        index = 0
        while due and index < len(person.opens):
            start, stop = person.opens[index]
            ready = max(due[0][0], next_report_at, start + rule.quiet_after_signed_s)
            moment = tick_at_or_after(start, ready)
            if moment > stop:
                index += 1
                continue
            ripe = [d for d in due if d[0] <= moment]
            chosen = ripe[int(rng.random() * len(ripe))]
            due.remove(chosen)
            sends.append((moment, person.handle, chosen[1]))
            next_report_at = moment + rule.min_gap_s + rng.expovariate(1 / rule.mean_extra_gap_s)
        sends += [(end, person.handle, c) for _, c in due]  # opens ran out: at the end
    return sorted(sends)


def shuffled_batches(
    sends: Sequence[tuple[float, str, str]], batch: int, max_hold_s: float, rng: random.Random
) -> list[Batch]:
    """The shuffler's rule on those moments: once B are held, everything held leaves at a
    random moment within the hold time, in random order; what is left goes at the end."""
    batches: list[Batch] = []
    held: list[tuple[str, str]] = []
    fires: float | None = None

    def forward(at: float) -> None:
        rng.shuffle(held)
        batches.append(Batch(at=at, reports=tuple(held)))
        held.clear()

    for moment, handle, campaign in sends:
        if fires is not None and moment > fires:
            forward(fires)
            fires = None
        held.append((campaign, handle))
        if fires is None and len(held) >= batch:
            fires = moment + rng.uniform(0, max_hold_s)
    if held:
        forward(fires if fires is not None else sends[-1][0] + rng.uniform(0, max_hold_s))
    return batches


# --- the check ----------------------------------------------------------------------------------


def persons_of(
    opens: dict[str, list[Open]], start: float, campaigns: dict[str, list[str]]
) -> list[Person]:
    """The persons who reported, with their opens as absolute times from delivery on."""
    found = []
    for handle, theirs in sorted(campaigns.items()):
        first = first_open_from(opens[handle], 0.0)
        if first is None:
            continue
        absolute = tuple((start + a, start + b) for a, b in opens[handle][first:])
        found.append(Person(handle, absolute[0][0], absolute, tuple(sorted(theirs))))
    return found


def timing_linkage(
    persons: Sequence[Person],
    batches: Sequence[Batch],
    timeline: Timeline,
    sent_at: dict[tuple[str, str], float],
    batch_size: int,
    max_hold_s: float,
    seed: int,
    problems: Sequence[str] = (),
) -> Check:
    """The attack on the audited run, against the reference (see the module's docstring).

    ``batches``: the shuffler's batch requests as the relay received them, each at the
    simulated moment it arrived; ``sent_at``: when each (sender, campaign) report left its
    device (ground truth, for the order test); ``problems``: what went wrong matching the
    relay's record with the timeline (each a violation)."""
    violations = list(problems)
    audited = attack(persons, batches, DECLARED)
    end = max((b.at for b in batches), default=0.0)
    reference: dict[str, list[Hits]] = {name: [] for name in STRATEGIES}
    for draw in range(REFERENCE_DRAWS):
        rng = random.Random(f"{seed}:reference:{draw}")
        sends = declared_sends(persons, DECLARED, rng, end)
        played = attack(persons, shuffled_batches(sends, batch_size, max_hold_s, rng), DECLARED)
        for name, hits in played.strategies.items():
            reference[name].append(hits)
    rows: dict[str, dict[str, float]] = {}
    findings: list[str] = []  # the failures, each as a short measured line
    best_name, best_ratio = "", 0.0
    for name, hits in audited.strategies.items():
        ref_n = sum(h.n for h in reference[name])
        ref_rate = sum(h.hits for h in reference[name]) / ref_n if ref_n else 0.0
        ref_accuracy = sum(h.accuracy for h in reference[name]) / ref_n if ref_n else 0.0
        allowed = ref_rate + Z * math.sqrt(ref_rate * (1 - ref_rate) / max(hits.n, 1))
        allowed += 2 / max(hits.n, 1)  # the reference's own sampling error, and ties
        accuracy = hits.accuracy / hits.n if hits.n else 0.0
        chance = hits.chance / hits.n if hits.n else 0.0
        rows[name] = {
            "guesses": hits.n,
            "hit_rate": round(hits.rate(), 4),
            "reference_hit_rate": round(ref_rate, 4),
            "allowed_hit_rate": round(allowed, 4),
            "accuracy": round(accuracy, 5),
            "reference_accuracy": round(ref_accuracy, 5),
            "chance": round(chance, 5),
        }
        if hits.n and hits.rate() > allowed:
            violations.append(
                f"{name}: the relay's guess held the person's report {hits.rate():.0%} of "
                f"the time ({hits.hits}/{hits.n}); the declared rule gives {ref_rate:.0%}, "
                f"at most {allowed:.0%} allowed: the devices' timing tells the relay more "
                "than the design declares"
            )
            findings.append(
                f"{name}: the relay's guess holds a person's report {hits.rate():.0%} of the "
                f"time (declared rule {ref_rate:.0%}, fails above {allowed:.0%})"
                + (f", accuracy {accuracy:.3f} = {accuracy / chance:.1f}x chance" if chance else "")
            )
        if chance and accuracy / chance > best_ratio:
            best_name, best_ratio = name, accuracy / chance
    small = [len(b.reports) for b in batches[:-1] if len(b.reports) < batch_size]
    if small:
        violations.append(
            f"{len(small)} batch request(s) held fewer than B = {batch_size} reports "
            f"(sizes {sorted(small)[:8]}): the relay saw reports in smaller crowds"
        )
        findings.append(f"{len(small)} of {len(batches)} batches held fewer than B = {batch_size}")
    rho, bound = _order_within_batches(batches, sent_at)
    if abs(rho) > bound:
        violations.append(
            f"the order within batches follows the order of sending (Spearman {rho:+.3f}, "
            f"bound {bound:.3f}): the shuffler does not shuffle"
        )
        findings.append(
            f"order within batches follows sending: Spearman {rho:+.2f} (bound {bound:.2f})"
        )
    best = rows.get(best_name, {})
    headline = (
        f"best strategy {best_name}: names a person's report with accuracy "
        f"{best.get('accuracy', 0):.4f}, {best_ratio:.1f}x chance ({best.get('chance', 0):.4f}); "
        f"the declared rule on the same opens gives {best.get('reference_accuracy', 0):.4f}"
        if best_name
        else "no report to link"
    )
    measured = "; ".join(findings) if findings else headline
    return make_check(
        "timing_linkage",
        "The relay links reports to people by timing no better than the declared design",
        violations,
        f"{len(persons):,} persons over {_span_days(persons, batches):.1f} simulated days of "
        f"app opens, {len(batches):,} batch requests; per strategy, the share of guesses "
        f"holding the report must stay within {Z} standard errors of the declared rule's "
        f"({REFERENCE_DRAWS} draws on the same opens); batches of at least B = {batch_size}; "
        f"order within batches: Spearman {rho:+.3f} (bound {bound:.3f})",
        measured=measured,
        strategies=rows,
        batch_sizes=histogram(len(b.reports) for b in batches),
        order_within_batches={"spearman": round(rho, 4), "bound": round(bound, 4)},
        reports_after_last_open=timeline.leftovers,
        last_batch_below_b=timeline.last_below_b,
        rule=DECLARED.__dict__,
    )


def _order_within_batches(
    batches: Sequence[Batch], sent_at: dict[tuple[str, str], float]
) -> tuple[float, float]:
    """Spearman's rho between a report's place in its batch and when it was sent, averaged
    over batches (weighted by size - 1), and the bound Z standard errors of that average."""
    total = weight = 0.0
    for batch in batches:
        moments = [sent_at.get((sender, campaign)) for campaign, sender in batch.reports]
        if len(moments) < 3 or any(m is None for m in moments):
            continue
        rho = spearman(list(range(len(moments))), [float(m or 0) for m in moments])
        total += rho * (len(moments) - 1)
        weight += len(moments) - 1
    if not weight:
        return 0.0, 1.0
    return total / weight, min(1.0, Z / math.sqrt(weight))


def _span_days(persons: Sequence[Person], batches: Sequence[Batch]) -> float:
    first = min((p.delivered_at for p in persons), default=0.0)
    last = max((b.at for b in batches), default=first)
    return (last - first) / 86_400


def observed_batches(
    exchanges: Sequence[Exchange], world: WorldResult
) -> tuple[list[Batch], list[str]]:
    """The shuffler's batch requests the relay answered, each at the simulated moment the
    timeline says it arrived, with its reports as (campaign, sender); and any mismatch
    between the two records (a problem in itself: a batch nobody forwarded)."""
    sender = {r.token_input: r.handle for r in world.redemptions}
    requests = [
        ex
        for ex in exchanges
        if ex.method == "POST" and ex.path == SHUFFLED_PATH and ex.status == 200
    ]
    timeline = world.timeline or Timeline()
    moments = [f.at for f in timeline.forwards for _ in range(f.requests)]
    problems = []
    if len(moments) != len(requests):
        problems.append(
            f"the relay answered {len(requests)} batch requests, the shuffler's timer fired for "
            f"{len(moments)}"
        )
    batches = []
    for ex, at in zip(requests, moments, strict=False):
        reports = []
        for raw in json.loads(ex.body).get("reports", []):
            try:
                report = decode_report(raw.encode())
            except InvalidReport:
                continue
            reports.append((report.campaign_id, sender.get(report.token_input, "?")))
        batches.append(Batch(at=at, reports=tuple(reports)))
    return batches, problems


def timing_attack(
    exchanges: Sequence[Exchange],
    world: WorldResult,
    opens: dict[str, list[Open]],
    batch_size: int,
    max_hold_s: float,
    seed: int,
) -> Check:
    """:func:`timing_linkage` on an audit run: its relay record and its simulated timeline."""
    campaigns: dict[str, list[str]] = defaultdict(list)
    for r in world.redemptions:
        campaigns[r.handle].append(r.campaign_id)
    persons = persons_of(opens, world.start, campaigns)
    batches, problems = observed_batches(exchanges, world)
    sent_at = {
        (r.handle, r.campaign_id): r.sent_at for r in world.redemptions if r.sent_at is not None
    }
    return timing_linkage(
        persons,
        batches,
        world.timeline or Timeline(),
        sent_at,
        batch_size,
        max_hold_s,
        seed,
        problems,
    )
