"""Playing a simulated week against a real relay with real clients.

1. Accounts: every person and business registers through the client and opens its delivery
   stream (``Messenger.listen``); all stay connected for the whole run. The persons' devices
   run in slices (``persons.py``), on worker processes from 200 persons as the audit's do;
   each phase below is one call per slice, and what their apps stored comes back as events.
2. Before the week: businesses register a template and top up; people make their choices
   (stop promotions, block, a marketing level) and some write to businesses and each other.
3. The week, day by day and hour by hour of virtual time. On the own relay, each business
   submits the day's campaigns at midnight, scheduled at their send times; the relay's clock
   is then moved to each send time and one dispatcher pass releases (or refuses, by each
   person's choices and the rolling cap) what is due. On an existing relay, a campaign is
   submitted when the virtual clock reaches its time and goes out at once. Either way the
   simulation waits until every released copy is in its person's store and its signal token
   obtained, then each recipient does what the plan says (read, clicked, dismissed noted on
   the device's pending report; a block or a stop sent to the relay) before the clock moves
   on, so the same seed plays the same week. Reports leave each device when due, hour by hour.
4. After the week: one more virtual day for the last reports; then (own relay) the clock
   moves past every campaign's figures_at, where the relay publishes each campaign's noisy
   figures once; then the campaign reports as businesses see them, the budgets, and the
   relay's record of every copy (own relay) or what still waits in each person's mailbox
   (an existing relay, whose figures come days after the run).

The privacy audit of the recorded traffic and the summary are made by ``privacy`` and
``summary`` from what this returns.
"""

import asyncio
import contextlib
import heapq
import secrets
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from sqlmodel import select

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import CampaignRun, run_campaign
from client.relay_api import RelayError
from client.store import StoredMessage
from sealpost.audit.fleet import gather_chunks
from sealpost.audit.recorder import Exchange
from sealpost.audit.runner import scratch_dir
from sealpost.audit.world import Redemption
from sealpost.sim.config import SimOptions
from sealpost.sim.devices import Fleet
from sealpost.sim.persons import SignalRow
from sealpost.sim.played import Played
from sealpost.sim.population import (
    DAY_MS,
    HOUR_MS,
    Campaign,
    SimPlan,
    outcome_of_actions,
    plan,
)
from sealpost.sim.privacy import PrivacyAudit, audit_own_relay, not_audited
from sealpost.sim.progress import Progress
from sealpost.sim.relay import ExternalRelay, OwnRelay, SimRelay, business_epsilon
from shared.api import TemplateInfo
from shared.signals import NO_SIGNAL, REPORT_VALUES

TOP_UP = 10**12  # micro-units per business: the simulation is not about running out
CAMPAIGN_BUDGET = 10**11
REQUEST_CONCURRENCY = 20  # choices and report flushes in flight at once
# How long to wait for a release's copies to reach their people before calling it a stall:
# a floor, plus a generous allowance per copy for a loaded two-core machine.
DELIVERY_WAIT_S = 60.0
DELIVERY_WAIT_PER_COPY_S = 0.05
# Tokens follow the (batched, delayed) ack of each copy.
TOKEN_WAIT_S = 20.0
TOKEN_WAIT_PER_COPY_S = 0.02
QUIET_WAIT_S = 3.0  # with no ack for this long, the clients are done acking
EXTERNAL_SETTLE_S = 1.5  # the clients batch their acks for about a second
# What the relay may answer a business's new campaign with, from what it learned of its
# marketing (server/quality.py, server/tiers.py, server/rollout.py): the simulated business
# skips that campaign, as a real one would be told to wait.
QUALITY_REFUSALS = frozenset(
    {"template_paused", "template_disabled", "tier_limit", "not_available_yet"}
)


class Simulation:
    """One run of a plan against one relay; :meth:`play` returns what it observed."""

    def __init__(
        self,
        sim_plan: SimPlan,
        relay: SimRelay,
        home: Path,
        progress: Progress,
        workers: int = 0,
    ) -> None:
        self.plan = sim_plan
        self.options = sim_plan.options
        self.relay = relay
        self.progress = progress
        self.now_ms = sim_plan.start_ms  # the virtual clock as the clients see it
        self.fleet = Fleet(sim_plan, relay.url, home, relay.shuffler_url, workers)
        self.played = Played(
            plan=sim_plan,
            relay_url=relay.url,
            own_relay=relay.own,
            log=self.fleet.log,
            relay_settings=relay.settings if isinstance(relay, OwnRelay) else None,
        )
        self.templates: dict[str, TemplateInfo] = {}
        # person -> heap of (send_after, campaign id): reports waiting on their devices
        self.due: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._lap = time.perf_counter()
        self._steps: Counter[str] = Counter()  # wall time per step of the week
        self._stuck = 0  # messages stored but left unacked by their clients
        self._reports_sent = 0  # for the progress line; the devices' records are the truth

    @contextlib.contextmanager
    def _step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._steps[name] += time.perf_counter() - started

    async def _set_now(self, now_ms: int) -> None:
        """Move the virtual clock, on every person's device too."""
        self.now_ms = now_ms
        await self.fleet.set_now(now_ms)

    def _timing(self, name: str) -> None:
        now = time.perf_counter()
        self.played.timings[name] = round(now - self._lap, 3)
        self._lap = now

    async def play(self) -> Played:
        try:
            await self._accounts()
            await self._before_the_week()
            started = time.perf_counter()
            await self._week()
            self.played.week_wall_s = time.perf_counter() - started
            self._timing("week")
            self.played.timings.update(
                {f"week.{name}": round(s, 3) for name, s in sorted(self._steps.items())}
            )
            if self.relay.own:
                self.progress.phase("publishing the campaigns' figures")
                self.played.figures_published_ms = await self.relay.publish_figures()
                self._timing("figures")
            await self._collect()
            self._timing("collect")
        finally:
            await self.fleet.close()
        return self.played

    # --- 1. accounts --------------------------------------------------------------------------

    async def _accounts(self) -> None:
        people = len(self.plan.persons)
        self.progress.phase(f"registering {people:,} persons")
        await self.fleet.register(lambda n, total: self.progress.update(registered=f"{n}/{total}"))
        self._timing("register")
        self.progress.phase(f"connecting {people + len(self.plan.businesses):,} streams")
        await self.fleet.listen()
        await self._streams_open()
        self._timing("connect")

    async def _streams_open(self) -> None:
        """Wait until every client's delivery stream is open, so that the first release is
        measured from connected clients (a late stream loses nothing: it reads its mailbox
        when it connects)."""
        wanted = len(self.plan.persons) + len(self.fleet.businesses)
        deadline = time.monotonic() + 30 + wanted / 50
        while time.monotonic() < deadline:
            if isinstance(self.relay, OwnRelay):
                opened = await asyncio.to_thread(self.relay.streams)
            else:
                await self.fleet.drain()
                opened = len(self.fleet.log.online)
            self.progress.update(open=f"{opened}/{wanted}")
            if opened >= wanted:
                return
            await asyncio.sleep(0.1)
        self.played.anomalies.append(f"only {opened} of {wanted} delivery streams opened")

    # --- 2. before the week -------------------------------------------------------------------

    async def _before_the_week(self) -> None:
        self.progress.phase("before the week: templates, choices, chats")
        for business in self.plan.businesses:
            shop = self.fleet.businesses[business.handle]
            await shop.api.top_up(TOP_UP)
            self.templates[business.handle] = await shop.api.register_template(business.template)
        await self.fleet.each("set_choices")
        # People write first (that opens the businesses' service windows and makes the
        # "chatted" level let their promotions through), then a few businesses answer.
        for messages in (self.plan.chats, self.plan.replies):
            sent = await self._send_chats(messages)
            for (_, recipient, _), (status, msg_id) in zip(messages, sent, strict=True):
                if status == "sent":
                    self.played.chats_sent.append((recipient, msg_id))
                else:
                    self.played.chats_failed += 1
        await self._until_stored(set(self.played.chats_sent), "chat messages")
        await self._quiet()
        self._timing("before_the_week")

    async def _send_chats(self, chats: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
        """Send (sender, recipient, text) chats from the businesses here and the persons in
        their slices; each one's (status, msg id), in the order given."""
        mine = [(i, c) for i, c in enumerate(chats) if c[0] in self.fleet.businesses]
        theirs = self.fleet.by_slice(
            [(i, c) for i, c in enumerate(chats) if c[0] not in self.fleet.businesses],
            lambda item: item[1][0],
        )
        outcome: dict[int, tuple[str, str]] = {}
        sent = await gather_chunks(
            [self.fleet.businesses[s].send_text(r, text) for _, (s, r, text) in mine],
            REQUEST_CONCURRENCY,
        )
        for (i, _), message in zip(mine, sent, strict=True):
            outcome[i] = (message.status, message.msg_id)
        answers = await self.fleet.each_part("send_chats", [[c for _, c in p] for p in theirs])
        for part, answer in zip([p for p in theirs if p], answers, strict=True):
            for (i, _), result in zip(part, answer, strict=True):
                outcome[i] = result
        return [outcome[i] for i in range(len(chats))]

    async def _until_stored(self, wanted: set[tuple[str, str]], what: str) -> None:
        log = self.fleet.log
        deadline = time.monotonic() + DELIVERY_WAIT_S + DELIVERY_WAIT_PER_COPY_S * len(wanted)
        while missing := [key for key in wanted if key not in log.stored]:
            if time.monotonic() > deadline:
                self.played.anomalies.append(f"{len(missing)} {what} not stored in time")
                return
            await self.fleet.changed(0.5)

    # --- 3. the week --------------------------------------------------------------------------

    async def _week(self) -> None:
        days = self.options.days
        start = self.plan.start_ms
        self.progress.phase("the week")
        self._show(1)
        for day in range(days):
            day_start = start + day * DAY_MS
            today = [c for c in self.plan.campaigns if c.day == day]
            await self._set_now(day_start)
            await self.relay.advance_to(day_start)  # expiries; nothing is due at midnight
            if self.relay.own:
                with self._step("submit"):
                    for campaign in today:
                        await self._submit(campaign, send_at=campaign.send_at_ms)
            for hour in range(24):
                hour_start = day_start + hour * HOUR_MS
                await self._hour(hour_start, hour_start + HOUR_MS, today)
            await self._rate_businesses(day + 1)
            self._show(day + 1)
            self.progress.note(
                f"day {day + 1}/{days}: {len(today)} campaign(s); "
                f"{sum(self.fleet.log.per_campaign.values()):,} copies delivered so far"
            )
        end = start + days * DAY_MS
        await self.relay.advance_to(end)
        if self.relay.own:
            # Copies held past the week while their template was paused go out in the
            # next day (pauses are hours long); people act on them as on any other.
            for hour in range(24):
                await self._hour(end + hour * HOUR_MS, end + (hour + 1) * HOUR_MS, [])
        # Reports leave within a day of their copy: let one more virtual day pass.
        await self._set_now(end + DAY_MS)
        self.progress.phase("the last reports")
        await self._flush_reports(self.now_ms)
        # A report its device pushed past that (a gap after its previous one) goes later.
        await self._flush_reports(self.now_ms + DAY_MS)
        below_b = await self.relay.forward_reports(everything=True)
        if below_b:
            self.played.timings["shuffler_last_batch_below_b"] = below_b

    async def _hour(self, hour_start: int, hour_end: int, today: list[Campaign]) -> None:
        """One virtual hour: what falls due goes out, then the reports due leave.

        On the own relay the moments are read off the relay: the send times of the copies
        still scheduled, which include copies held while their template was paused (their
        send time moved to the pause's end, perhaps within this very hour). On an existing
        relay they are the plan's send times, each campaign submitted then."""
        if isinstance(self.relay, OwnRelay):
            relay = self.relay
            after = hour_start
            while (moment := await asyncio.to_thread(relay.next_due, after, hour_end)) is not None:
                await self._release(moment, [])
                after = moment + 1
        else:
            for moment in sorted(
                {c.send_at_ms for c in today if hour_start <= c.send_at_ms < hour_end}
            ):
                await self._release(moment, [c for c in today if c.send_at_ms == moment])
        await self._set_now(hour_end)
        with self._step("reports"):
            await self._flush_reports(hour_end)
            await self.relay.forward_reports()

    async def _rate_businesses(self, day: int) -> None:
        """At the end of each simulated day, what each business is told of its quality
        (GET /v1/quality): its rating and tier, and its template's rating and any pause."""
        for business in self.plan.businesses:
            shop = self.fleet.businesses[business.handle]
            try:
                found = await shop.api.request("GET", "/v1/quality")
            except RelayError as exc:  # e.g. an existing relay from before quality
                self.played.anomalies.append(f"{business.label}: quality not read: {exc}")
                return
            template = next(iter(found.get("templates") or []), {})
            self.played.quality_days[business.label].append(
                {
                    "day": day,
                    "rating": found["business"]["rating"],
                    "tier": found["business"]["tier"],
                    "limit_24h": found["business"]["limit_24h"],
                    "template_rating": template.get("rating"),
                    "lows": template.get("lows", 0),
                    "paused_until": template.get("paused_until"),
                    "disabled": template.get("disabled", False),
                    "share": template.get("share"),
                    "share_low": template.get("share_low"),
                    "share_high": template.get("share_high"),
                }
            )

    def _show(self, day: int) -> None:
        self.progress.update(
            day=f"{day}/{self.options.days}",
            delivered=sum(self.fleet.log.per_campaign.values()),
            reports=self._reports_sent,
        )

    async def _submit(self, campaign: Campaign, send_at: int | None) -> CampaignRun | None:
        """The business personalises, seals and submits one copy per audience row; None
        when the relay refuses the campaign for what it learned of the business's
        marketing (its template paused or disabled, its tier full)."""
        shop = self.fleet.businesses[campaign.business]
        rows = [
            AudienceRow(line=i + 2, handle=h, variables=campaign.variables[h])
            for i, h in enumerate(campaign.audience)
        ]
        try:
            run = await run_campaign(
                shop.api,
                shop.profile.keys,
                campaign.business,
                self.templates[campaign.business],
                Audience(rows=rows),
                budget=CAMPAIGN_BUDGET,
                send_at=send_at,
                name=campaign.label,
            )
        except RelayError as exc:
            if exc.code not in QUALITY_REFUSALS:
                raise
            self.played.refused_campaigns[campaign.label] = exc.code
            return None
        self.played.runs[campaign.label] = run
        self.played.campaign_ids[campaign.label] = run.campaign.id
        return run

    async def _quiet(self) -> None:
        """Wait until every message released so far is acked, so that each release starts
        from idle clients: the same seed then plays the same week."""
        if not isinstance(self.relay, OwnRelay):
            # Nothing to ask an existing relay: give the clients' batched acks time to go.
            await asyncio.sleep(EXTERNAL_SETTLE_S)
            return
        last, since = -1, time.monotonic()
        while (unacked := await asyncio.to_thread(self.relay.unacked)) > self._stuck:
            if unacked != last:
                last, since = unacked, time.monotonic()
            elif time.monotonic() - since > QUIET_WAIT_S:
                # A client that stored a message and never acked it: the relay keeps it
                # pending (redelivered on reconnect); report it rather than wait for ever.
                self.played.anomalies.append(
                    f"{unacked - self._stuck} stored message(s) left unacked by their clients "
                    f"(nothing changed for {QUIET_WAIT_S:.0f} s)"
                )
                self._stuck = unacked  # don't wait for those again
                return
            await asyncio.sleep(0.05)

    async def _release(self, moment: int, group: list[Campaign]) -> None:
        """What is due at ``moment`` goes out; wait for it, then people act on it. On the
        own relay the campaigns are those whose copies the relay released then (``group``
        is not used); on an existing relay, ``group`` is submitted now."""
        await self._set_now(moment)
        if isinstance(self.relay, OwnRelay):
            with self._step("quiet"):
                await self._quiet()
            with self._step("release"):
                began = await self.relay.advance_to(moment)
                expected = dict(await asyncio.to_thread(self.relay.released_at, moment))
            label_of = {cid: label for label, cid in self.played.campaign_ids.items()}
            group = [self.plan.campaign(label_of[cid]) for cid in sorted(expected)]
        else:
            began = time.time()
            with self._step("submit"):
                for campaign in group:
                    await self._submit(campaign, send_at=None)
            group = [c for c in group if c.label in self.played.campaign_ids]
        if not group:
            return
        ids = [self.played.campaign_ids[c.label] for c in group]
        for campaign_id in ids:
            self.played.released_wall[campaign_id] = began
        with self._step("delivery"):
            if isinstance(self.relay, OwnRelay):
                await self._until_delivered(expected)
            else:
                await self._until_settled(ids, sum(len(c.audience) for c in group))
        with self._step("tokens"):
            await self._until_tokens(ids)
        with self._step("act"):
            await self._act(group)
        self._show(group[0].day + 1)

    async def _until_delivered(self, expected: dict[str, int]) -> None:
        log = self.fleet.log
        total = sum(expected.values())
        deadline = time.monotonic() + DELIVERY_WAIT_S + DELIVERY_WAIT_PER_COPY_S * total
        while True:
            short = {cid: n - log.per_campaign[cid] for cid, n in expected.items()}
            short = {cid: n for cid, n in short.items() if n > 0}
            if not short:
                return
            if time.monotonic() > deadline:
                self.played.anomalies.append(
                    f"{sum(short.values())} of {total} released copies not stored within "
                    f"{deadline - time.monotonic() + DELIVERY_WAIT_S:.0f} s"
                )
                return
            self.progress.update(delivered=sum(log.per_campaign.values()))
            await self.fleet.changed(0.5)

    async def _until_settled(self, campaign_ids: list[str], audience: int) -> None:
        """An existing relay: how many copies it released is not known here (what a business
        is told does not set refused copies apart), so wait until these campaigns' copies
        stop arriving. Any that never arrive are found at the end, waiting in their person's
        mailbox."""
        log = self.fleet.log
        deadline = time.monotonic() + DELIVERY_WAIT_S + DELIVERY_WAIT_PER_COPY_S * audience
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            stored = sum(log.per_campaign[cid] for cid in campaign_ids)
            if stored != last:
                last, since = stored, time.monotonic()
            elif time.monotonic() - since >= EXTERNAL_SETTLE_S:
                return
            self.progress.update(delivered=sum(log.per_campaign.values()))
            await self.fleet.changed(0.2)

    async def _until_tokens(self, campaign_ids: list[str]) -> None:
        """Wait until each delivered copy's device holds its signal token and report (the
        client asks for the token right after acking the copy)."""
        await self.fleet.drain()
        waiting = {
            (stored.handle, cid)
            for cid in campaign_ids
            for stored in self.fleet.log.of_campaign(cid)
            if stored.status == "verified"
        }
        deadline = time.monotonic() + TOKEN_WAIT_S + TOKEN_WAIT_PER_COPY_S * len(waiting)
        if isinstance(self.relay, OwnRelay):
            # Cheaper than reading every device's store again and again: the relay's count
            # of issued tokens first (each device finishes its token just after that).
            while await asyncio.to_thread(self.relay.tokens_issued, campaign_ids) < len(waiting):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
        while waiting:
            parts = self.fleet.by_slice(sorted(waiting), lambda key: key[0])
            for found in await self.fleet.each_part("send_after", parts):
                for (handle, cid), send_after in sorted(found.items()):
                    heapq.heappush(self.due[handle], (send_after, cid))
                    waiting.discard((handle, cid))
            if not waiting:
                return
            if time.monotonic() > deadline:
                self.played.tokens_missing += sorted(waiting)
                self.played.anomalies.append(
                    f"{len(waiting)} delivered copies got no signal token (no report for them)"
                )
                return
            await asyncio.sleep(0.05)

    async def _act(self, group: list[Campaign]) -> None:
        """Each recipient does what the plan says with the copy: reading, clicking and
        dismissing are noted on the device (they leave it only as the report's randomized
        outcome); blocking or stopping promotions is an explicit choice sent to the relay."""
        await self.fleet.drain()
        actions = []
        for campaign in group:
            cid = self.played.campaign_ids[campaign.label]
            for stored in sorted(self.fleet.log.of_campaign(cid), key=lambda s: s.handle):
                done = tuple(self.plan.behaviour[(stored.handle, campaign.label)])
                actions.append((stored.handle, cid, done, campaign.business))
        await self.fleet.each_part("act", self.fleet.by_slice(actions, lambda a: a[0]))

    async def _flush_reports(self, until_ms: int) -> None:
        """Every device whose reports are due by ``until_ms`` sends them, each alone at its
        own moment (the device keeps them a minute from its signed traffic and a random gap
        apart); devices taken in the order of their first due moment. A report pushed past
        ``until_ms`` by those rules waits for a later pass."""
        until_s = until_ms // 1000
        due = sorted(
            (heap[0][0], handle)
            for handle, heap in self.due.items()
            if heap and heap[0][0] <= until_s
        )
        if not due:
            return

        for handle in {h for _, h in due}:
            heap = self.due[handle]
            while heap and heap[0][0] <= until_s:
                heapq.heappop(heap)
        parts = self.fleet.by_slice([h for _, h in due], lambda h: h)
        for flushed in await self.fleet.each_part("flush", parts, until_s):
            for result in flushed:
                if result.error is not None:
                    self.played.anomalies.append(f"{result.handle}: {result.error}")
                    continue
                self._reports_sent += result.sent
                self.played.reports_refused += result.refused
                if result.later is not None:  # still waiting: visit this device again then
                    heap = self.due[result.handle]
                    heapq.heappush(heap, (max(int(result.later) + 1, until_s + 1), ""))

    # --- 4. after the week --------------------------------------------------------------------

    async def _collect(self) -> None:
        self.progress.phase("campaign reports and budgets")
        played = self.played
        label_of = {cid: label for label, cid in played.campaign_ids.items()}
        played.true_counts = {cid: dict.fromkeys(REPORT_VALUES, 0) for cid in label_of}
        await self.fleet.drain()
        rows: dict[str, list[SignalRow]] = {}
        for part in await self.fleet.each("signal_rows"):
            rows.update(part)
        for handle in self.fleet.handles:
            for row in rows.get(handle, []):
                if not row.sent:
                    played.anomalies.append(f"{handle}: a report for {row.campaign_id} never left")
                    continue
                played.reporters[row.campaign_id] += 1
                if row.signal is None:  # sent, so drawn: the slice must have noted it
                    played.anomalies.append(
                        f"{handle}: the report for {row.campaign_id} left with a value the "
                        "simulation did not note"
                    )
                done = self.plan.behaviour[(handle, label_of[row.campaign_id])]
                # No signal (signals off, or the budget spent): in no outcome's truth.
                value = NO_SIGNAL if row.signal is False else outcome_of_actions(done)
                played.true_counts[row.campaign_id][value] += 1
                played.redemptions.append(
                    Redemption(
                        handle=handle,
                        campaign_id=row.campaign_id,
                        token_input=row.token_input,
                        send_after=row.send_after,
                    )
                )
        for label, cid in played.campaign_ids.items():
            shop = self.fleet.businesses[self.plan.campaign(label).business]
            played.reports[cid] = await shop.api.campaign(cid)
        for handle, shop in self.fleet.businesses.items():
            played.budgets[handle] = await shop.api.budget()
        for ids in await self.fleet.each("message_ids"):
            played.message_ids.update(ids)
        for messenger in self.fleet.businesses.values():
            with messenger.store.session() as session:
                played.message_ids.update(session.exec(select(StoredMessage.msg_id)))
        if isinstance(self.relay, OwnRelay):
            played.copies = await asyncio.to_thread(self.relay.copies)
        else:
            played.waiting = await self._still_waiting()

    async def _still_waiting(self) -> list[tuple[str, str, str | None]]:
        """Every message left in the persons' mailboxes, as their own clients list them: on
        an existing relay, the only record of what was released and never stored."""

        found: list[tuple[str, str, str | None]] = []
        for part in await self.fleet.each("mailboxes"):
            found += part
        return found


def run_compared(
    options: SimOptions, progress: Progress | None = None
) -> tuple["SimRun", "SimRun"]:
    """The same seed played twice: with the quality system, then without it."""
    with_quality = run_sim(replace(options, quality=True), progress)
    if progress is not None:
        progress.note("the same seed again, without the quality system")
    without = run_sim(replace(options, quality=False, compare_quality=False), progress)
    return with_quality, without


@dataclass
class SimRun:
    """A finished run: what it observed, and the relay's record when it was our own."""

    options: SimOptions
    played: Played
    exchanges: list[Exchange]  # every request the own relay received (empty for --relay)
    audit: PrivacyAudit
    relay_cpu_s: float | None
    wall_s: float


def run_sim(options: SimOptions, progress: Progress | None = None) -> SimRun:
    """Plan and play one run, audit its traffic (own relay), and return everything."""
    progress = progress or Progress(enabled=False)
    options.validate()
    started = time.perf_counter()
    workdir = scratch_dir("sealpost-sim-")
    # On an existing relay, handles of this run must not collide with accounts already there.
    prefix = "" if options.relay is None else f"s{secrets.token_hex(3)}-"
    sim_plan = plan(options, prefix=prefix)
    relay: SimRelay = (
        ExternalRelay(options.relay)
        if options.relay
        else OwnRelay(options, workdir, business_epsilon(sim_plan))
    )
    try:
        progress.phase("starting the relay" if relay.own else f"using the relay at {relay.url}")
        relay.start()
        try:
            simulation = Simulation(
                sim_plan, relay, workdir / "home", progress, options.effective_workers
            )
            played = asyncio.run(simulation.play())
            if isinstance(relay, OwnRelay):
                progress.phase("privacy audit of the recorded traffic")
                audited = time.perf_counter()
                audit, exchanges = audit_own_relay(played, relay)
                played.timings["audit"] = round(time.perf_counter() - audited, 3)
            else:
                audit, exchanges = not_audited("external relay"), []
        except BaseException:
            if isinstance(relay, OwnRelay):
                relay.kill()
            raise
        cpu = relay.cpu_s if isinstance(relay, OwnRelay) else None
    finally:
        if options.keep:
            options.keep.mkdir(parents=True, exist_ok=True)
            shutil.copytree(workdir, options.keep / workdir.name, dirs_exist_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
        progress.done()
    return SimRun(
        options=options,
        played=played,
        exchanges=exchanges,
        audit=audit,
        relay_cpu_s=cpu,
        wall_s=time.perf_counter() - started,
    )
