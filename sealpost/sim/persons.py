"""A slice of the simulated persons as real clients, in this process or on a worker process.

Thousands of devices (keys, SQLite store, HTTP client and delivery stream each) keep one
Python process busy while the relay waits; as the audit does (``sealpost.audit.fleet``), the
simulator splits its persons over worker processes so that the devices use every core. Each
:class:`PersonSlice` answers whole phases at once (one call per release, per hour of reports),
so the pipe carries a few calls per simulated hour, not one per device.

What a person's app stores is not counted here: the slice queues each ``MessageStored`` and
connection event as it happens and hands them over on :meth:`PersonSlice.drain`; the
simulation replays them into its one ``DeliveryLog``, so lost and duplicated copies are
counted exactly as when every device ran in the simulation's own process.
"""

import asyncio
import gc
import random
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import select

from client.events import ClientEvent, ConnectionChanged, MessageStored
from client.messenger import Messenger
from client.relay_api import RelayAPI
from client.signals import PendingSignal, SignalAgent
from client.store import StoredMessage
from sealpost.audit.fleet import gather_bounded, gather_chunks, register_person
from sealpost.sim.population import SimPlan, events_of_actions
from shared.api import SetLevel
from shared.signals import NO_SIGNAL, ReportValue

# Accounts registered at once. More does not go faster: the relay checks every signature and
# writes every nonce, and SQLite takes one writer at a time.
REGISTER_CONCURRENCY = 10
REQUEST_CONCURRENCY = 20  # choices and report flushes in flight at once, per slice
SIM_ACK_DELAY_S = 0.2  # see PersonSlice.listen
# The own relay's keepalive on delivery streams (sealpost/sim/relay.py), and the silence after
# which the simulated devices call a stream dead (the client's default, 45 s, is three of the
# relay's default keepalives of 15 s). Each keepalive re-reads the stream's mailbox: at
# 10,000 streams every 15 s that was 667 reads and writes a second, a quarter of the relay's
# CPU for a whole run. Nothing on loopback drops an idle connection, and every release
# reaches the streams by push, so the simulation keeps them rarer.
SIM_KEEPALIVE_S = 120.0
SIM_STREAM_SILENCE_S = 150.0
# Requests a slice's devices have in flight to the relay at once (gate_requests). Thousands
# of devices that each got a copy in the same push all ack it, and then ask for its token,
# within the same second: at 10,000 persons that was thousands of new connections at once,
# more than the relay's listen queue holds (the kernel dropped them by the hundred thousand,
# devices waited out connect timeouts and gave up, and a release stalled). A few hundred in
# flight keep the relay as busy (a slot is held until the slice's own busy event loop has read
# the answer). A turn is taken before the request is signed: taken after, with 24 a slice,
# requests waited over a minute and the relay refused them as stale.
RELAY_REQUESTS_IN_FLIGHT = 128
# Open files a connected device holds: its store's SQLite database, journal and shared
# memory (for a connection or two) and its HTTP connections (measured: about 5.5). A process
# may hold only so many (RLIMIT_NOFILE, often 20,000 or less), which caps its devices.
FILES_PER_DEVICE = 6
FILES_KEPT_FREE = 0.2  # of the limit, for the process's own files and sockets


def most_devices_per_process() -> int:
    """How many simulated devices one process can keep open, by its open-file limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1_000_000
    return max(1, int(soft * (1 - FILES_KEPT_FREE)) // FILES_PER_DEVICE)


def gate_requests(api: RelayAPI, turns: asyncio.Semaphore) -> None:
    """Let ``api`` (a simulated device's channel to the relay) send a request only while
    fewer than ``RELAY_REQUESTS_IN_FLIGHT`` of its slice's are waiting for an answer. Taken
    before the request is signed, so that a request that waited its turn is as fresh as any:
    the relay refuses one signed more than a minute before it arrives. Simulated devices
    take turns as real ones, each on its own network, never need to; each still sends the
    same requests, on its own connections. Its delivery stream is opened apart, untouched."""
    send = api._send

    async def gated(*args: Any, **kwargs: Any) -> Any:
        async with turns:
            return await send(*args, **kwargs)

    api._send = gated  # type: ignore[method-assign]


@dataclass(frozen=True)
class Stored:
    """One message as a simulated app heard of it."""

    handle: str
    msg_id: str
    campaign_id: str | None
    status: str  # verified or quarantined
    text: str | None
    at: float  # wall time (unix s) the client had it stored


@dataclass(frozen=True)
class Connection:
    """A simulated app's delivery stream opened (or dropped)."""

    handle: str
    online: bool


Event = Stored | Connection


@dataclass(frozen=True)
class Flushed:
    """What one device did when its due reports were asked for."""

    handle: str
    sent: int  # reports that left (counted or refused by the relay)
    refused: int
    later: float | None  # when its next report is due (simulated unix s), if any
    error: str | None = None


@dataclass(frozen=True)
class SignalRow:
    """A device's report for one campaign, as its store holds it at the end."""

    campaign_id: str
    sent: bool
    token_input: str
    send_after: int
    # Whether the report carried an outcome (False: no_signal, with signals off or the
    # device's budget spent); None if the device never drew its value.
    signal: bool | None = None


class PersonSlice:
    """The planned persons ``plan.persons[i]`` for ``i`` in ``indices``, as real clients on
    the simulated clock (which the simulation sets with :meth:`set_now`)."""

    def __init__(
        self,
        plan: SimPlan,
        indices: list[int],
        relay_url: str,
        home: Path,
        shuffler_url: str | None,
    ) -> None:
        self.plan = plan
        self.persons = [plan.persons[i] for i in indices]
        self.relay_url = relay_url
        self.home = home
        self.shuffler_url = shuffler_url
        self.people: dict[str, Messenger] = {}
        self.now_ms = plan.start_ms
        self._events: list[Event] = []
        self._stop: Any = None
        self._listening: list[Any] = []
        self._registered = 0
        self._turns: asyncio.Semaphore | None = None  # RelayGate's, made on the slice's loop
        # (person, campaign id) -> whether the device's report carried an outcome, as the
        # device decided when it drew the report's value (what only the simulation knows).
        self._signal: dict[tuple[str, str], bool] = {}

    def now_s(self) -> float:
        return self.now_ms / 1000

    async def set_now(self, now_ms: int) -> None:
        self.now_ms = now_ms

    async def register(self, count: int) -> int:
        """Create the next ``count`` accounts (keys, registration, profile on disk); returns
        how many this slice has registered so far."""
        chunk = self.persons[self._registered : self._registered + count]
        made = await gather_bounded(
            [register_person(self.home, p, self.relay_url) for p in chunk],
            REGISTER_CONCURRENCY,
        )
        if self._turns is None:
            self._turns = asyncio.Semaphore(RELAY_REQUESTS_IN_FLIGHT)
        for person, messenger in zip(chunk, made, strict=True):
            self.people[person.handle] = messenger
            gate_requests(messenger.api, self._turns)
            agent = messenger.signals
            # A seeded random source per device, so that a run can be repeated (production
            # uses SystemRandom), and the simulated clock for report days, delays and the
            # epsilon budget. Epsilon is the protocol's (ln 3 a report), as on every device.
            agent._rng = random.Random(f"{self.plan.options.seed}:{person.handle}")
            agent.clock = self.now_s
            agent.settings.enabled = not person.signals_off
            self._note_signals(person.handle, agent)
            if self.shuffler_url:
                agent.shuffler_url = self.shuffler_url
        self._registered += len(chunk)
        if self._registered == len(self.persons):
            # Thousands of clients stay open for the whole run: keep the collector off them.
            gc.freeze()
        return self._registered

    def _note_signals(self, handle: str, agent: SignalAgent) -> None:
        """Note, as the device draws each report's value (once: a retry sends the same),
        whether it carries an outcome or no_signal: the truth the relay's estimates are about
        is among the reports that carry one."""
        draw = agent._noisy

        def noted(row: PendingSignal) -> ReportValue:
            value = draw(row)
            self._signal[(handle, row.campaign_id)] = value != NO_SIGNAL
            return value

        agent._noisy = noted  # type: ignore[method-assign]

    def _listener(self, handle: str) -> Callable[[ClientEvent], None]:
        def on_event(event: ClientEvent) -> None:
            if isinstance(event, ConnectionChanged):
                self._events.append(Connection(handle, event.online))
            elif isinstance(event, MessageStored):
                message = event.message
                self._events.append(
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

    async def listen(self) -> None:
        """Open every person's delivery stream (the client's own reconnecting loop)."""
        self._stop = asyncio.Event()
        for handle, messenger in self.people.items():
            # The week waits for each release's acks before moving on; a device's usual
            # batching delay (seconds) would be most of a simulated day's wall time.
            messenger.settings.ack_delay_s = SIM_ACK_DELAY_S
            messenger.api.stream_silence_s = SIM_STREAM_SILENCE_S
            self._listening.append(
                asyncio.create_task(messenger.listen(self._listener(handle), self._stop))
            )

    async def drain(self) -> list[Event]:
        """The events since the last drain, in the order they happened."""
        events, self._events = self._events, []
        return events

    async def set_choices(self) -> None:
        """Each person's choices before the week: businesses accepted, stops, blocks, a
        marketing level."""
        calls = []
        for person in self.persons:
            api = self.people[person.handle].api
            calls += [api.set_choice("accepted", b, True) for b in person.accepts]
            calls += [api.set_choice("promotions-stopped", b, True) for b in person.stops]
            calls += [api.set_choice("blocked", b, True) for b in person.blocks]
            if person.level.level != "all":
                level = SetLevel(level=person.level.level, weekly_limit=person.level.weekly_limit)  # type: ignore[arg-type]
                calls.append(api.set_level(level))
        await gather_bounded(calls, REQUEST_CONCURRENCY)

    async def send_chats(self, chats: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
        """Send (sender, recipient, text) chats; each one's (status, msg id)."""
        sent = await gather_chunks(
            [self.people[s].send_text(r, text) for s, r, text in chats], REQUEST_CONCURRENCY
        )
        return [(m.status, m.msg_id) for m in sent]

    async def send_after(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """For each (person, campaign id), the moment its report is due, once the device
        holds the copy's signal token (absent: not yet)."""
        found: dict[tuple[str, str], int] = {}
        for handle, campaign_id in keys:
            with self.people[handle].store.session() as session:
                row = session.get(PendingSignal, campaign_id)
            if row is not None:
                found[(handle, campaign_id)] = row.send_after
        return found

    async def act(self, actions: list[tuple[str, str, tuple[str, ...], str]]) -> None:
        """(person, campaign id, actions, business): reading, clicking and dismissing are
        noted on the device (they leave it only as the report's randomized outcome);
        blocking or stopping promotions is an explicit choice sent to the relay."""
        choices = []
        for handle, campaign_id, done, business in actions:
            person = self.people[handle]
            for event in events_of_actions(done):
                person.signals.record(campaign_id, event)
            if "blocked" in done:
                choices.append(person.api.set_choice("blocked", business, True))
            elif "stopped_promotions" in done:
                choices.append(person.api.set_choice("promotions-stopped", business, True))
        await gather_bounded(choices, REQUEST_CONCURRENCY)

    async def flush(self, handles: list[str], until_s: int) -> list[Flushed]:
        """Each device sends its reports due by ``until_s`` (each alone at its own moment:
        the device keeps them a minute from its signed traffic and a random gap apart)."""

        async def one(handle: str) -> Flushed:
            agent = self.people[handle].signals
            try:
                result = await agent.flush_due(until=until_s)
            except Exception as exc:  # counted at the end from the devices' own records
                return Flushed(handle, 0, 0, None, f"report flush failed: {exc}")
            sent = refused = 0
            if result is not None:
                sent, refused = result.counted + len(result.refused), len(result.refused)
            return Flushed(handle, sent, refused, agent.next_send_at())

        return await gather_bounded([one(h) for h in handles], REQUEST_CONCURRENCY)

    async def signal_rows(self) -> dict[str, list[SignalRow]]:
        """Every person's reports as its store holds them."""
        rows: dict[str, list[SignalRow]] = {}
        for handle, messenger in self.people.items():
            with messenger.store.session() as session:
                rows[handle] = [
                    SignalRow(
                        r.campaign_id,
                        r.sent,
                        r.token_input,
                        r.send_after,
                        self._signal.get((handle, r.campaign_id)),
                    )
                    for r in session.exec(select(PendingSignal))
                ]
        return rows

    async def message_ids(self) -> set[str]:
        ids: set[str] = set()
        for messenger in self.people.values():
            with messenger.store.session() as session:
                ids.update(session.exec(select(StoredMessage.msg_id)))
        return ids

    async def mailboxes(self) -> list[tuple[str, str, str | None]]:
        """Every message left in these persons' mailboxes, as their own clients list them."""

        async def mailbox(handle: str) -> list[tuple[str, str, str | None]]:
            api = self.people[handle].api
            found: list[tuple[str, str, str | None]] = []
            after = 0
            while True:
                page = await api.mailbox_page(after=after)
                found += [(handle, i.envelope.id, i.envelope.campaign_id) for i in page.items]
                if not page.items:
                    return found
                after = page.next_after

        pages = await gather_chunks([mailbox(h) for h in self.people], REQUEST_CONCURRENCY)
        return [item for page in pages for item in page]

    async def aclose(self) -> None:
        if self._stop is not None:
            self._stop.set()
            await asyncio.gather(*self._listening, return_exceptions=True)
        for messenger in self.people.values():
            await messenger.aclose()
        gc.unfreeze()
