"""Simulated days of reports: devices send while their app is open, the shuffler forwards as
it would in use, and the audit notes the simulated moment of each.

:func:`play_reports` moves simulated time forward over every fleet of persons. A device's
report leaves at a moment its own client code picks (``client/signals.py``: the report's drawn
moment, a minute's quiet after its signed requests, a random gap after its previous report),
at a minute tick of one of its app opens (``app_opens.py``). The real reports reach the real
shuffler in that order. The shuffler's timer is played in simulated time too, by its rule: once
it holds B reports it forwards everything it holds at a random moment within ``max_hold_s``
(``shuffler/app.py``). Nothing waits: a simulated day takes seconds.

The result is what the timing attack needs: when each report left its device, and when each
of the shuffler's batches reached the relay.
"""

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sealpost.audit.app_opens import DAY_S
from sealpost.audit.fleet import Fleet, SentReport, Step


@dataclass(frozen=True)
class Forward:
    """One time the shuffler's timer fired: ``requests`` signed batches reached the relay at
    ``at`` (unix s, simulated), holding ``reports`` reports."""

    at: float
    requests: int
    reports: int


@dataclass
class Timeline:
    sent: list[SentReport] = field(default_factory=list)
    forwards: list[Forward] = field(default_factory=list)
    leftovers: int = 0  # reports still on a device after its last simulated open
    last_below_b: int = 0  # reports in a final forward smaller than B (end of the run)


@dataclass(frozen=True)
class ShufflerTimer:
    """The shuffler as the timeline drives it: ``forward(minimum)`` forwards everything held
    if at least ``minimum`` are (returns requests and reports sent), ``held()`` counts."""

    forward: Callable[[int], Awaitable[tuple[int, int]]]
    held: Callable[[], Awaitable[int]]
    batch: int
    max_hold_s: float


async def play_reports(
    fleets: Sequence[Fleet], shuffler: ShufflerTimer, start: float, rng: random.Random
) -> Timeline:
    """Send every planned report at its simulated moment, forwarding as the shuffler would.

    Time moves from one report to the next (reports from different fleets still reach the
    shuffler in the order they left), and to each moment the shuffler's timer fires."""
    timeline = Timeline()
    next_at: list[float | None] = list(await asyncio.gather(*(f.call("next_at") for f in fleets)))
    held = await shuffler.held()
    fires_at: float | None = None
    while True:
        soonest = min((t for t in next_at if t is not None), default=None)
        if fires_at is not None and (soonest is None or soonest > fires_at):
            requests, reports = await shuffler.forward(shuffler.batch)
            if requests:
                timeline.forwards.append(Forward(at=fires_at, requests=requests, reports=reports))
            fires_at, held = None, await shuffler.held()
            continue
        if soonest is None:
            break
        # The fleet whose report comes next sends everything it has before any other
        # fleet's next report, the timer, or the B-th report held (one call, not one each).
        first = next_at.index(soonest)
        others = [t for i, t in enumerate(next_at) if i != first and t is not None]
        until = min([*others, fires_at if fires_at is not None else math.inf])
        limit = None if fires_at is not None else max(1, shuffler.batch - held)
        done: Step = await fleets[first].call("step", math.nextafter(until, -math.inf), limit)
        next_at[first] = done.next_at
        timeline.sent += done.sent
        held += len(done.sent)
        if fires_at is None and held >= shuffler.batch:
            held = await shuffler.held()  # what actually arrived (a device may drop one)
            if held >= shuffler.batch:
                # B are held: the timer is drawn from the moment the B-th arrived.
                fires_at = done.sent[-1].at + rng.uniform(0, shuffler.max_hold_s)
    # Devices whose opens ran out with a report left (rare): the app opens once more.
    end = max((r.at for r in timeline.sent), default=start) + DAY_S / 24
    late = await asyncio.gather(*(f.call("send_leftovers", end) for f in fleets))
    timeline.leftovers = sum(len(part) for part in late)
    timeline.sent += [r for part in late for r in part]
    # What is left is fewer than B: forwarded at the end of the run, said in the timings.
    timeline.last_below_b = await shuffler.held()
    if timeline.last_below_b:
        at = end + rng.uniform(0, shuffler.max_hold_s)
        requests, reports = await shuffler.forward(1)
        timeline.forwards.append(Forward(at=at, requests=requests, reports=reports))
    return timeline
