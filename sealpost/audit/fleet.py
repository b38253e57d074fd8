"""The audit's simulated persons: real clients, played in this process or on worker processes.

A thousand simulated devices, each with its own keys, SQLite store and HTTP client, keep one
Python process busy while the relay waits. :class:`PersonFleet` plays a slice of the planned
persons phase by phase; :func:`start_fleets` splits the persons over worker processes (each
runs one fleet and answers calls over a pipe), so that the devices use every core.

After their copies arrive the persons live in simulated time (``timeline.py``): each device's
clock is set to the moment of its app open, and ``step`` sends the reports due by a moment,
in time order, at the minute ticks of the person's opens (``app_opens.py``).
"""

import asyncio
import gc
import multiprocessing
import random
import traceback
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from client.messenger import Messenger
from client.signals import PendingSignal
from sealpost.audit.app_opens import TICK_S, first_open_from, tick_at_or_after
from sealpost.audit.plants import planted
from shared.api import SetLevel
from shared.signals import EVENTS, NO_SIGNAL, REPORT_VALUES, EpsilonLedger, outcome_of

if TYPE_CHECKING:  # world.py imports this module
    from sealpost.audit.world import WorldPlan

# Requests in flight at once, per fleet. Higher does not go faster: a fleet is CPU-bound.
CONCURRENCY = 10
STOP_WORKER_S = 10.0


async def gather_chunks(coros: list[Any], size: int = CONCURRENCY) -> list[Any]:
    """Await ``coros`` ``size`` at a time; results in order."""
    results: list[Any] = []
    for i in range(0, len(coros), size):
        results += await asyncio.gather(*coros[i : i + size])
    return results


async def gather_bounded(coros: list[Any], limit: int = CONCURRENCY) -> list[Any]:
    """Await ``coros`` with at most ``limit`` running at once, each started (in order) as
    soon as another ends; results in order. Unlike :func:`gather_chunks`, no chunk waits for
    its slowest member while the process has nothing else to do."""
    turns = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with turns:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def register_person(home: Path, person: Any, relay_url: str) -> Messenger:
    """A planned person (``handle``, ``country``, ``index``) as a new account and device."""
    return await Messenger.create_account(
        home,
        person.handle,
        person.handle,
        relay_url,
        country=person.country,
        display_name=f"Person {person.index}",
    )


@dataclass(frozen=True)
class Planned:
    """A report a device will send (ground truth the relay must not reconstruct)."""

    handle: str
    campaign_id: str
    token_input: str  # base64, as in the report
    send_after: int  # the moment the client drew for it (unix s, simulated)
    true_outcome: str  # what the person really did (an outcome), before randomized response
    budget_spent: bool  # the device's privacy budget was spent: its report says no_signal


@dataclass(frozen=True)
class SentReport:
    """One report leaving a device, at a simulated moment (unix s)."""

    handle: str
    campaign_id: str
    token_input: str
    at: float


@dataclass
class Step:
    """What one step of simulated time did on a fleet: the reports that left, and when the
    next one will (None: nothing left to send)."""

    sent: list[SentReport]
    next_at: float | None


class SimulatedClock:
    """A device's clock in simulated time (unix s): the audit moves it; the client reads it
    for report days, delays and its quiet time after signed requests."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Interactions:
    """What a fleet's persons did with the campaign copies they received (ground truth)."""

    # campaign id -> report value -> true count among the people who will send a report:
    # their outcome if the report carries one, else no_signal
    true_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    reporters: Counter[str] = field(default_factory=Counter)  # campaign id -> reports
    redemptions: list[Planned] = field(default_factory=list)  # every report to be sent

    def merge(self, other: "Interactions") -> None:
        for cid, counts in other.true_counts.items():
            mine = self.true_counts.setdefault(cid, dict.fromkeys(REPORT_VALUES, 0))
            for value, n in counts.items():
                mine[value] += n
        self.reporters.update(other.reporters)
        self.redemptions += other.redemptions


class PersonFleet:
    """The planned persons ``plan.persons[i]`` for ``i`` in ``indices``, as real clients."""

    def __init__(
        self,
        plan: "WorldPlan",
        indices: list[int],
        relay_url: str,
        home: Path,
        shuffler_url: str | None = None,
    ) -> None:
        self.plan = plan
        self.persons = [plan.persons[i] for i in indices]
        self.relay_url = relay_url
        self.shuffler_url = shuffler_url  # None: reports go straight to the relay
        self.home = home
        self.people: dict[str, Messenger] = {}
        # Simulated time, per person: the audit's start (unix s), which open the person is
        # in (and whether its sync was played), when its next report leaves, what has left.
        self.start = 0.0
        self._open_index: dict[str, int] = {}
        self._synced_open: dict[str, int] = {}
        self._next: dict[str, float | None] = {}
        self._left: dict[str, set[str]] = {}

    async def register(self) -> None:
        made = await gather_chunks(
            [register_person(self.home, p, self.relay_url) for p in self.persons]
        )
        self.people = {m.profile.handle: m for m in made}
        for p in self.persons:
            # Each simulated device draws its report delays and randomized response from a
            # seeded source, so that a run is reproducible (production uses SystemRandom).
            agent = self.people[p.handle].signals
            agent._rng = random.Random(f"{self.plan.seed}:{p.handle}")
            agent.shuffler_url = self.shuffler_url
            if p.budget_spent:
                _spend_budget(agent)
        # Thousands of simulated devices stay open; keep the collector from rescanning them.
        gc.freeze()

    async def send_chats(self, chats: list[tuple[str, str, str]]) -> None:
        """Send, in order, the chats whose sender is one of this fleet's persons."""
        for sender, recipient, text in chats:
            if sender in self.people:
                await self.people[sender].send_text(recipient, text)

    async def set_choices(self) -> None:
        choices = []
        for p in self.persons:
            api = self.people[p.handle].api
            choices += [api.set_choice("promotions-stopped", b, True) for b in p.stops]
            choices += [api.set_choice("blocked", b, True) for b in p.blocks]
            if p.level_none:
                choices.append(api.set_level(SetLevel(level="none")))
        await gather_chunks(choices)

    async def deliver(self, start: float) -> None:
        """Every person opens the app for the first time after the campaigns went out (at
        ``start``, unix s) and syncs: copies are stored and acked, tokens fetched, and each
        report's moment drawn, all on the device's clock set to that simulated open."""
        self.start = start
        for p in self.persons:
            first = first_open_from(p.opens, 0.0)
            assert first is not None, "draw_opens gives everyone an open every day"
            self._open_index[p.handle] = first
            self._left[p.handle] = set()
            self.people[p.handle].signals.clock = SimulatedClock(start + p.opens[first][0])
        await gather_chunks([m.sync() for m in self.people.values()])

    async def interact(self, label_of: dict[str, str], owner: dict[str, str]) -> Interactions:
        """Each person acts on the campaign copies that arrived, as planned; the truth.

        Reading, clicking and dismissing are noted on the campaign's pending report (its
        outcome is what they amount to); blocking and stopping promotions are preference
        changes, sent by name as the app sends them (a report says nothing of them)."""
        from sqlmodel import select

        found = Interactions()
        after_choices = []
        for p in self.persons:
            person = self.people[p.handle]
            with person.store.session() as s:
                rows = list(s.exec(select(PendingSignal).where(PendingSignal.sent == False)))  # noqa: E712
            for row in rows:
                events = p.behaviour[label_of[row.campaign_id]]
                noted = [e for e in events if e in EVENTS]
                for event in noted:
                    person.signals.record(row.campaign_id, event)  # type: ignore[arg-type]
                outcome = outcome_of(noted)  # type: ignore[arg-type]
                business = owner[label_of[row.campaign_id]]
                if "blocked" in events:
                    after_choices.append(person.api.set_choice("blocked", business, True))
                elif "stopped_promotions" in events:
                    after_choices.append(
                        person.api.set_choice("promotions-stopped", business, True)
                    )
                counts = found.true_counts.setdefault(
                    row.campaign_id, dict.fromkeys(REPORT_VALUES, 0)
                )
                found.reporters[row.campaign_id] += 1
                counts[NO_SIGNAL if p.budget_spent else outcome] += 1
                found.redemptions.append(
                    Planned(
                        handle=p.handle,
                        campaign_id=row.campaign_id,
                        token_input=row.token_input,
                        send_after=row.send_after,
                        true_outcome=outcome,
                        budget_spent=p.budget_spent,
                    )
                )
        await gather_chunks(after_choices)
        for p in self.persons:
            self._next[p.handle] = self._next_moment(p.handle)
        return found

    # --- simulated time: reports leave while the app is open -------------------------------

    def _next_moment(self, handle: str, after: float = 0.0) -> float | None:
        """When this person's next report leaves (unix s, simulated), or None if none is
        left or no open is left. The device decides (``next_send_at``: its report's own
        moment, a minute's quiet after its signed requests, a gap after its last report);
        the app must be open then, at one of its minute ticks."""
        agent = self.people[handle].signals
        opens = self.plan.person(handle).opens
        index = self._open_index[handle]
        while index < len(opens):
            start, end = (self.start + t for t in opens[index])
            if self._synced_open.get(handle) != index:
                # The app opened and synced: a signed request at its start, which the quiet
                # time counts from (the sync itself is not sent: the relay's view of it is
                # the open's time, which the timing attack is given).
                agent.api.last_signed_at = start
                self._synced_open[handle] = index
            ready = agent.next_send_at()
            if ready is None:
                break
            moment = tick_at_or_after(start, max(ready, after))
            if moment <= end:
                self._open_index[handle] = index
                return moment
            index += 1
        self._open_index[handle] = index
        return None

    def _next_at(self) -> float | None:
        return min((t for t in self._next.values() if t is not None), default=None)

    async def next_at(self) -> float | None:
        """When the next report of this fleet's persons leaves (simulated; None: none)."""
        return self._next_at()

    async def step(self, until: float, limit: int | None = None) -> Step:
        """Simulated time passes up to ``until``: every report due by then leaves, one after
        another in time order, so that they reach the shuffler in the order they were sent
        (a person's next report may fall before ``until`` too); stops early once ``limit``
        reports left (the shuffler's timer starts at its B-th)."""
        sent: list[SentReport] = []
        while (moment := self._next_at()) is not None and moment <= until:
            if limit is not None and len(sent) >= limit:
                break
            handle = min((t, h) for h, t in self._next.items() if t == moment)[1]
            agent = self.people[handle].signals
            agent.clock = SimulatedClock(moment)
            await agent.flush(now=moment)
            left = self._newly_left(handle, moment)
            sent += left
            # A device that sent nothing when it was due (it should not happen) is asked
            # again at a later tick rather than at the same moment forever.
            self._next[handle] = self._next_moment(handle, after=moment + (0 if left else 1))
        return Step(sent=sent, next_at=self._next_at())

    async def send_leftovers(self, at: float) -> list[SentReport]:
        """Reports still on a device after its last simulated open leave at ``at`` (the app
        opened once more), so that every report is counted."""
        sent: list[SentReport] = []
        for handle, person in self.people.items():
            person.signals.clock = SimulatedClock(at)
            person.api.last_signed_at = at - TICK_S  # the app's sync as it opened
            while await person.signals.flush_due(until=at + 86_400) is not None:
                pass
            sent += self._newly_left(handle, at)
            self._next[handle] = None
        return sent

    def _newly_left(self, handle: str, moment: float) -> list[SentReport]:
        from sqlmodel import select

        with self.people[handle].store.session() as s:
            rows = list(s.exec(select(PendingSignal).where(PendingSignal.sent == True)))  # noqa: E712
        left = [r for r in rows if r.campaign_id not in self._left[handle]]
        self._left[handle].update(r.campaign_id for r in left)
        return [SentReport(handle, r.campaign_id, r.token_input, moment) for r in left]

    async def message_ids(self) -> list[str]:
        from sqlmodel import select

        from client.store import StoredMessage

        ids: set[str] = set()
        for messenger in self.people.values():
            with messenger.store.session() as s:
                ids.update(s.exec(select(StoredMessage.msg_id)))
        return sorted(ids)

    async def aclose(self) -> None:
        for messenger in self.people.values():
            await messenger.aclose()


def _spend_budget(agent: Any) -> None:
    """Spend a device's whole privacy budget for the days around now (unix days the audit
    may simulate): its reports then say no_signal, as the client sends them once its budget
    is spent."""
    ledger = EpsilonLedger()
    today = datetime.now(UTC).date()
    # A week at the daily cap: within the 30-day cap, and past every simulated report day.
    for offset in range(-1, 6):
        ledger.spend(today + timedelta(days=offset), ledger.daily_cap)
    agent._save_budget(ledger)


class Fleet(Protocol):
    async def call(self, method: str, *args: Any) -> Any: ...

    async def aclose(self) -> None: ...


class LocalFleet:
    """A fleet in this process (small worlds, and tests that patch the client). A device
    plant (plants.py) is in place in this process from here until :meth:`aclose`."""

    def __init__(self, fleet: Any, plant: str | None = None) -> None:
        self.fleet = fleet
        self._plant = ExitStack()
        self._plant.enter_context(planted(plant, "device"))

    async def call(self, method: str, *args: Any) -> Any:
        return await getattr(self.fleet, method)(*args)

    async def aclose(self) -> None:
        try:
            await self.fleet.aclose()
        finally:
            self._plant.close()


class ProcessFleet:
    """Any fleet (an object with async methods and ``aclose``) made by ``make(*args)`` on a
    worker process; :meth:`call` runs one of its methods there. The audit's persons and the
    simulator's both use it: ``make`` and ``args`` must pickle (a class, plain data)."""

    def __init__(
        self, make: Any, args: tuple[Any, ...], name: str, plant: str | None = None
    ) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, make, args, plant), name=name, daemon=True
        )
        self._process.start()
        child.close()

    async def call(self, method: str, *args: Any) -> Any:
        self._conn.send((method, args))
        try:
            status, value = await asyncio.to_thread(self._conn.recv)
        except EOFError:
            raise RuntimeError(
                f"a worker process died during {method} (exit code {self._process.exitcode})"
            ) from None
        if status == "error":
            raise RuntimeError(f"a worker process failed in {method}:\n{value}")
        return value

    async def aclose(self) -> None:
        try:
            if self._process.is_alive():
                await self.call("aclose")
                self._conn.send(None)
        except (RuntimeError, OSError):
            pass
        await asyncio.to_thread(self._process.join, STOP_WORKER_S)
        if self._process.is_alive():
            self._process.kill()
        self._conn.close()


def worker_fleet(
    plan: "WorldPlan",
    indices: list[int],
    relay_url: str,
    home: Path,
    shuffler_url: str | None = None,
    plant: str | None = None,
) -> ProcessFleet:
    """The audit's persons ``indices`` on a worker process."""
    args = (plan, indices, relay_url, home, shuffler_url)
    return ProcessFleet(PersonFleet, args, "sealpost-audit-persons", plant)


def _serve(conn: Connection, make: Any, args: tuple[Any, ...], plant: str | None = None) -> None:
    """A worker process: answer calls on ``conn`` until told to stop (``None``), with the
    device plant ``plant`` (plants.py), if any, in place."""

    async def serve() -> None:
        fleet = make(*args)
        while (request := await asyncio.to_thread(conn.recv)) is not None:
            method, args_ = request
            try:
                conn.send(("ok", await getattr(fleet, method)(*args_)))
            except Exception:  # reported to the parent, which raises it there
                conn.send(("error", traceback.format_exc()))

    with planted(plant, "device"):
        asyncio.run(serve())


def start_fleets(
    plan: "WorldPlan",
    workers: int,
    relay_url: str,
    home: Path,
    shuffler_url: str | None = None,
    plant: str | None = None,
) -> list[Fleet]:
    """Split ``plan.persons`` over ``workers`` processes (0: play them all in this one),
    with the device plant ``plant`` (plants.py), if any, in place on their devices."""
    everyone = list(range(len(plan.persons)))
    if workers <= 0:
        fleet = PersonFleet(plan, everyone, relay_url, home, shuffler_url)
        return [LocalFleet(fleet, plant)]
    return [
        worker_fleet(plan, everyone[i::workers], relay_url, home, shuffler_url, plant)
        for i in range(workers)
    ]
