"""The audit's simulated persons: real clients, played in this process or on worker processes.

A thousand simulated devices, each with its own keys, SQLite store and HTTP client, keep one
Python process busy while the relay waits. :class:`PersonFleet` plays a slice of the planned
persons phase by phase; :func:`start_fleets` splits the persons over worker processes (each
runs one fleet and answers calls over a pipe), so that the devices use every core.
"""

import asyncio
import gc
import multiprocessing
import random
import traceback
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from client.messenger import Messenger
from client.signals import PendingSignal
from shared.api import SetLevel
from shared.signals import EVENTS

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


@dataclass
class Interactions:
    """What a fleet's persons did with the campaign copies they received (ground truth)."""

    # campaign id -> event -> true count among the people who will send a report
    true_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    reporters: Counter[str] = field(default_factory=Counter)  # campaign id -> reports
    # (handle, campaign id, token input, send_after) of every report that will be sent
    redemptions: list[tuple[str, str, str, int]] = field(default_factory=list)

    def merge(self, other: "Interactions") -> None:
        for cid, counts in other.true_counts.items():
            mine = self.true_counts.setdefault(cid, dict.fromkeys(EVENTS, 0))
            for event, n in counts.items():
                mine[event] += n
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

    async def sync(self) -> None:
        await gather_chunks([m.sync() for m in self.people.values()])

    async def interact(self, label_of: dict[str, str], owner: dict[str, str]) -> Interactions:
        """Each person acts on the campaign copies that arrived, as planned; the truth."""
        from sqlmodel import select

        found = Interactions()
        after_choices = []
        for p in self.persons:
            person = self.people[p.handle]
            with person.store.session() as s:
                rows = list(s.exec(select(PendingSignal).where(PendingSignal.sent == False)))  # noqa: E712
            for row in rows:
                events = p.behaviour[label_of[row.campaign_id]]
                for event in events:
                    person.signals.record(row.campaign_id, event)  # type: ignore[arg-type]
                business = owner[label_of[row.campaign_id]]
                if "blocked" in events:
                    after_choices.append(person.api.set_choice("blocked", business, True))
                elif "stopped_promotions" in events:
                    after_choices.append(
                        person.api.set_choice("promotions-stopped", business, True)
                    )
                counts = found.true_counts.setdefault(row.campaign_id, dict.fromkeys(EVENTS, 0))
                found.reporters[row.campaign_id] += 1
                counts["delivered"] += 1
                for event in events:
                    counts[event] += 1
                found.redemptions.append(
                    (p.handle, row.campaign_id, row.token_input, row.send_after)
                )
        await gather_chunks(after_choices)
        return found

    async def send_reports(self, due: list[tuple[int, str]]) -> int:
        """Time passes: each person in ``due`` (moment, handle) that is here sends what is
        due by its moment, each report alone at its own moment (client/signals.py keeps
        them apart from the device's signed traffic and from each other); then anything
        left goes. Returns the anonymous requests sent."""
        sent = await gather_chunks(
            [
                self.people[h].signals.flush_due(until=moment)
                for moment, h in due
                if h in self.people
            ]
        )
        for person in self.people.values():  # nothing may be left behind
            sent.append(await person.signals.flush_due(until=2e10))
        return sum(r.counted + len(r.refused) for r in sent if r is not None)

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


class Fleet(Protocol):
    async def call(self, method: str, *args: Any) -> Any: ...

    async def aclose(self) -> None: ...


class LocalFleet:
    """A fleet in this process (small worlds, and tests that patch the client)."""

    def __init__(self, fleet: PersonFleet) -> None:
        self.fleet = fleet

    async def call(self, method: str, *args: Any) -> Any:
        return await getattr(self.fleet, method)(*args)

    async def aclose(self) -> None:
        await self.fleet.aclose()


class WorkerFleet:
    """A fleet on a worker process; :meth:`call` runs one of its methods there."""

    def __init__(
        self,
        plan: "WorldPlan",
        indices: list[int],
        relay_url: str,
        home: Path,
        shuffler_url: str | None = None,
    ) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(child, plan, indices, relay_url, home, shuffler_url),
            name="sealpost-audit-persons",
            daemon=True,
        )
        self._process.start()
        child.close()

    async def call(self, method: str, *args: Any) -> Any:
        self._conn.send((method, args))
        try:
            status, value = await asyncio.to_thread(self._conn.recv)
        except EOFError:
            raise RuntimeError(
                f"an audit worker process died during {method} (exit code {self._process.exitcode})"
            ) from None
        if status == "error":
            raise RuntimeError(f"an audit worker process failed in {method}:\n{value}")
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


def _serve(
    conn: Connection,
    plan: "WorldPlan",
    indices: list[int],
    relay_url: str,
    home: Path,
    shuffler_url: str | None,
) -> None:
    """A worker process: answer calls on ``conn`` until told to stop (``None``)."""

    async def serve() -> None:
        fleet = PersonFleet(plan, indices, relay_url, home, shuffler_url)
        while (request := await asyncio.to_thread(conn.recv)) is not None:
            method, args = request
            try:
                conn.send(("ok", await getattr(fleet, method)(*args)))
            except Exception:  # reported to the parent, which raises it there
                conn.send(("error", traceback.format_exc()))

    asyncio.run(serve())


def start_fleets(
    plan: "WorldPlan",
    workers: int,
    relay_url: str,
    home: Path,
    shuffler_url: str | None = None,
) -> list[Fleet]:
    """Split ``plan.persons`` over ``workers`` processes (0: play them all in this one)."""
    everyone = list(range(len(plan.persons)))
    if workers <= 0:
        return [LocalFleet(PersonFleet(plan, everyone, relay_url, home, shuffler_url))]
    return [
        WorkerFleet(plan, everyone[i::workers], relay_url, home, shuffler_url)
        for i in range(workers)
    ]
