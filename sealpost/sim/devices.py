"""The simulated devices: one real client core (``client.messenger.Messenger``) per person and
business, all connected at once, each holding its delivery stream open through the client's
own ``listen`` loop.

Deliveries are counted where a person would see them: the ``MessageStored`` events the client
raises once a message is verified and committed to its store. Nothing here trusts the relay
about what arrived.
"""

import asyncio
import contextlib
import gc
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import select

from client.events import ClientEvent, ConnectionChanged, MessageStored
from client.messenger import Messenger
from client.signals import PendingSignal
from sealpost.audit.fleet import gather_chunks, register_person
from sealpost.sim.population import SimPlan

# Accounts registered at once. More does not go faster: the relay checks every signature and
# writes every nonce, and SQLite takes one writer at a time.
REGISTER_CONCURRENCY = 10
SIM_ACK_DELAY_S = 0.2  # see Devices.listen


@dataclass(frozen=True)
class Stored:
    """One message as a simulated app heard of it."""

    handle: str
    msg_id: str
    campaign_id: str | None
    status: str  # verified or quarantined
    text: str | None
    at: float  # wall time (unix s) the client had it stored


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
        def on_event(event: ClientEvent) -> None:
            if isinstance(event, ConnectionChanged):
                if event.online:
                    self.online.add(handle)
                else:
                    self.online.discard(handle)
                    self.disconnects += 1
                return
            if not isinstance(event, MessageStored):
                return
            message = event.message
            key = (handle, message.msg_id)
            if key in self.stored:
                self.duplicates.append(key)
                return
            stored = Stored(
                handle=handle,
                msg_id=message.msg_id,
                campaign_id=message.campaign_id,
                status=message.status,
                text=message.text,
                at=time.time(),
            )
            self.stored[key] = stored
            if message.campaign_id:
                self.per_campaign[message.campaign_id] += 1
                self._by_campaign.setdefault(message.campaign_id, []).append(stored)
            self._changed.set()

        return on_event

    async def changed(self, within_s: float) -> None:
        """Wait until something is stored (or ``within_s`` seconds pass)."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), within_s)

    def of_campaign(self, campaign_id: str) -> list[Stored]:
        return list(self._by_campaign.get(campaign_id, []))


class Fleet:
    """All the simulated accounts' clients; persons' signal agents follow the virtual clock."""

    def __init__(
        self,
        plan: SimPlan,
        relay_url: str,
        home: Path,
        virtual_now_s: Callable[[], float],
        shuffler_url: str | None = None,
    ) -> None:
        self.plan = plan
        self.relay_url = relay_url
        self.shuffler_url = shuffler_url
        self.home = home
        self.virtual_now_s = virtual_now_s
        self.persons: dict[str, Messenger] = {}
        self.businesses: dict[str, Messenger] = {}
        self.log = DeliveryLog()
        self._stop = asyncio.Event()
        self._listening: list[asyncio.Task[None]] = []

    def get(self, handle: str) -> Messenger:
        return self.persons.get(handle) or self.businesses[handle]

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
        people = self.plan.persons
        for start in range(0, len(people), 100):
            chunk = people[start : start + 100]
            made = await gather_chunks(
                [register_person(self.home, p, self.relay_url) for p in chunk],
                REGISTER_CONCURRENCY,
            )
            for person, messenger in zip(chunk, made, strict=True):
                self.persons[person.handle] = messenger
                agent = messenger.signals
                # A seeded random source per device, so that a run can be repeated
                # (production uses SystemRandom), the researcher's epsilon, and the
                # simulated clock for report days, delays and the epsilon budget.
                agent._rng = random.Random(f"{self.plan.options.seed}:{person.handle}")
                agent.settings.epsilon_per_bit = self.plan.options.epsilon
                agent.clock = self.virtual_now_s
                if self.shuffler_url:
                    agent.shuffler_url = self.shuffler_url
            on_progress(len(self.persons), len(people))
        # Thousands of clients stay open for the whole run: keep the collector off them.
        gc.freeze()

    def listen(self) -> None:
        """Open every account's delivery stream (the client's own reconnecting loop)."""
        for handle, messenger in {**self.persons, **self.businesses}.items():
            # The week waits for each release's acks before moving on; a device's usual
            # batching delay (seconds) would be most of a simulated day's wall time.
            messenger.settings.ack_delay_s = SIM_ACK_DELAY_S
            self._listening.append(
                asyncio.create_task(messenger.listen(self.log.listener(handle), self._stop))
            )

    def pending_signal(self, handle: str, campaign_id: str) -> PendingSignal | None:
        """The person's scheduled report for a campaign, once its token was obtained."""
        with self.persons[handle].store.session() as session:
            return session.get(PendingSignal, campaign_id)

    def signals_of(self, handle: str) -> list[PendingSignal]:
        with self.persons[handle].store.session() as session:
            return list(session.exec(select(PendingSignal)))

    async def close(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._listening, return_exceptions=True)
        for messenger in (*self.persons.values(), *self.businesses.values()):
            await messenger.aclose()
        gc.unfreeze()
