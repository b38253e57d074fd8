"""The simulated devices: one real client core (``client.messenger.Messenger``) per person and
business, all connected at once, each holding its delivery stream open through the client's
own ``listen`` loop. The businesses' clients run in this process; the persons' run in slices
(``persons.py``), in this process or, for large runs, on worker processes.

Deliveries are counted where a person would see them: the ``MessageStored`` events the client
raises once a message is verified and committed to its store. Nothing here trusts the relay
about what arrived.
"""

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from client.events import ClientEvent, ConnectionChanged, MessageStored
from client.messenger import Messenger
from sealpost.audit.fleet import Fleet as Slice
from sealpost.audit.fleet import LocalFleet, ProcessFleet
from sealpost.sim.persons import (
    SIM_ACK_DELAY_S,
    SIM_STREAM_SILENCE_S,
    Connection,
    Event,
    PersonSlice,
    Stored,
)
from sealpost.sim.population import SimPlan

__all__ = ["DeliveryLog", "Fleet", "Stored"]
REGISTER_STEP = 250  # accounts per slice between two progress updates (slices wait there)
DRAIN_EVERY_S = 0.1  # how often the persons' events are fetched while waiting on them


class DeliveryLog:
    """Every ``MessageStored`` event of every simulated client, as it happens."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], Stored] = {}
        self.duplicates: list[tuple[str, str]] = []  # (handle, msg id) heard of twice
        self.per_campaign: Counter[str] = Counter()
        # The same records by campaign: each release looks up its own copies, and scanning
        # every stored message each time grows with the square of the run.
        self._by_campaign: dict[str, list[Stored]] = {}
        self.online: set[str] = set()
        self.disconnects = 0
        self._changed = asyncio.Event()

    def listener(self, handle: str) -> Callable[[ClientEvent], None]:
        """A business's client events, straight into the log."""

        def on_event(event: ClientEvent) -> None:
            if isinstance(event, ConnectionChanged):
                self.record(Connection(handle, event.online))
            elif isinstance(event, MessageStored):
                message = event.message
                self.record(
                    Stored(
                        handle=handle,
                        msg_id=message.msg_id,
                        campaign_id=message.campaign_id,
                        status=message.status,
                        text=message.text,
                        at=time.time(),
                    )
                )

        return on_event

    def replay(self, events: Iterable[Event]) -> None:
        for event in events:
            self.record(event)

    def record(self, event: Event) -> None:
        """One event, from a business's client here or a person's client in a slice."""
        if isinstance(event, Connection):
            if event.online:
                self.online.add(event.handle)
            else:
                self.online.discard(event.handle)
                self.disconnects += 1
            return
        key = (event.handle, event.msg_id)
        if key in self.stored:
            self.duplicates.append(key)
            return
        self.stored[key] = event
        if event.campaign_id:
            self.per_campaign[event.campaign_id] += 1
            self._by_campaign.setdefault(event.campaign_id, []).append(event)
        self._changed.set()

    async def changed(self, within_s: float) -> None:
        """Wait until something is stored (or ``within_s`` seconds pass)."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), within_s)

    def of_campaign(self, campaign_id: str) -> list[Stored]:
        return list(self._by_campaign.get(campaign_id, []))


class Fleet:
    """All the simulated accounts' clients: the businesses here, the persons in slices (on
    ``workers`` processes; 0: in this one); persons' signal agents follow the virtual clock,
    which :meth:`set_now` moves."""

    def __init__(
        self,
        plan: SimPlan,
        relay_url: str,
        home: Path,
        shuffler_url: str | None = None,
        workers: int = 0,
    ) -> None:
        self.plan = plan
        self.relay_url = relay_url
        self.home = home
        self.businesses: dict[str, Messenger] = {}
        self.log = DeliveryLog()
        self.workers = workers
        everyone = list(range(len(plan.persons)))
        parts = [everyone[i::workers] for i in range(workers)] if workers > 0 else [everyone]
        args = [(plan, part, relay_url, home, shuffler_url) for part in parts]
        self.slices: list[Slice] = (
            [ProcessFleet(PersonSlice, a, "sealpost-sim-persons") for a in args]
            if workers > 0
            else [LocalFleet(PersonSlice(*args[0]))]
        )
        # Which slice plays each person.
        self.slice_of: dict[str, int] = {
            plan.persons[i].handle: n for n, part in enumerate(parts) for i in part
        }
        self._stop = asyncio.Event()
        self._listening: list[asyncio.Task[None]] = []

    @property
    def handles(self) -> list[str]:
        """The persons, in the plan's order."""
        return [p.handle for p in self.plan.persons]

    def by_slice(self, items: Iterable[Any], handle: Callable[[Any], str]) -> list[list[Any]]:
        """``items`` split by the slice that plays each one's person (order kept)."""
        parts: list[list[Any]] = [[] for _ in self.slices]
        for item in items:
            parts[self.slice_of[handle(item)]].append(item)
        return parts

    async def each(self, method: str, *args: Any) -> list[Any]:
        """Call ``method`` on every slice at once."""
        return await asyncio.gather(*(s.call(method, *args) for s in self.slices))

    async def each_part(self, method: str, parts: list[list[Any]], *args: Any) -> list[Any]:
        """Call ``method`` on every slice with its part (slices with nothing are skipped)."""
        return await asyncio.gather(
            *(
                s.call(method, part, *args)
                for s, part in zip(self.slices, parts, strict=True)
                if part
            )
        )

    async def set_now(self, now_ms: int) -> None:
        await self.each("set_now", now_ms)

    async def drain(self) -> None:
        """Bring the persons' app events into the log."""
        for events in await self.each("drain"):
            self.log.replay(events)

    async def changed(self, within_s: float) -> None:
        """Wait for something to be stored: a business's event wakes this at once, the
        persons' are fetched from their slices every ``DRAIN_EVERY_S``."""
        await self.log.changed(min(within_s, DRAIN_EVERY_S))
        await self.drain()

    async def register(self, on_progress: Callable[[int, int], None]) -> None:
        """Create every account through the client (keys, registration, profile on disk)."""
        for business in self.plan.businesses:
            self.businesses[business.handle] = await Messenger.create_account(
                self.home,
                business.handle,
                business.handle,
                self.relay_url,
                business=True,
                display_name=business.display_name,
            )
        people = len(self.plan.persons)
        done = 0
        while done < people:
            done = sum(await self.each("register", REGISTER_STEP))
            on_progress(done, people)

    async def listen(self) -> None:
        """Open every account's delivery stream (the client's own reconnecting loop)."""
        for handle, messenger in self.businesses.items():
            messenger.settings.ack_delay_s = SIM_ACK_DELAY_S  # see PersonSlice.listen
            messenger.api.stream_silence_s = SIM_STREAM_SILENCE_S
            self._listening.append(
                asyncio.create_task(messenger.listen(self.log.listener(handle), self._stop))
            )
        await self.each("listen")

    async def close(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._listening, return_exceptions=True)
        for messenger in self.businesses.values():
            await messenger.aclose()
        await asyncio.gather(*(s.aclose() for s in self.slices), return_exceptions=True)
