"""The relay a simulation talks to: its own on loopback, or an existing one (``--relay``).

The own relay is the audit's recording relay (``sealpost.audit.recorder.RelayProcess``) in a
process of its own, on a manual clock that starts at the simulated week's first moment: the
simulation moves it to each campaign's send time and runs a dispatcher pass there, so a week
of scheduling, rolling caps and weekly levels plays in seconds. Request signatures still use
wall time, so the clients run unchanged. Its database can be read (never written) to know
exactly which copies it released and refused. After the week the clock moves on past every
campaign's figures_at, so that the relay publishes each campaign's noisy figures once, as it
would days later; each business's privacy budget is made large enough for all of its
campaigns (:func:`business_epsilon`).

The own relay runs with a shuffler beside it (``sealpost shuffler``, in this process, behind
the same recording layer): devices send their reports to it, one per request, and it forwards
them to the relay in shuffled batches of at least B when the simulation says (after each
simulated hour), the relay trusting its key only. Reports still held when the run ends (fewer
than B) go in one last, smaller batch, so that every report is counted; the summary says so.

An existing relay keeps its own, real clock: nothing can be scheduled a simulated day ahead,
so campaigns go out as soon as the simulation reaches their time, their figures come days
after the run, and its database is not ours to read: what it did is known only from what the
simulated people and businesses saw.
"""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy import Engine, exists, func
from sqlmodel import Session, col, select

from sealpost.audit.recorder import Exchange, RelayProcess
from sealpost.audit.runner import shuffler_exchanges, start_shuffler
from sealpost.sim.config import SimOptions
from sealpost.sim.persons import SIM_KEEPALIVE_S
from sealpost.sim.population import EPOCH_MS, SimPlan
from server.accountant import WINDOW_MS
from server.app import figures_policy
from server.db import make_engine, read_engine
from server.figures import figures_at
from server.models import Campaign, MailboxEntry, PublishedFigures, TokenIssue
from server.settings import RelaySettings
from shared.shuffled import public_key_b64
from shuffler.embedded import EmbeddedShuffler
from shuffler.keys import load_or_create

_BUDGET = RelaySettings.model_fields["business_epsilon_30d"]
DEFAULT_BUSINESS_EPSILON: float = _BUDGET.default
MAX_BUSINESS_EPSILON: float = next(
    float(m.le) for m in _BUDGET.metadata if getattr(m, "le", None) is not None
)
EPSILON_PER_CAMPAIGN: float = (
    RelaySettings.model_fields["figures_epsilon_counts"].default
    + RelaySettings.model_fields["figures_epsilon_interactions"].default
)


# How a campaign's --figures-epsilon is split, as the relay's defaults split theirs.
COUNTS_SHARE = RelaySettings.model_fields["figures_epsilon_counts"].default / EPSILON_PER_CAMPAIGN


def figures_epsilons(options: SimOptions) -> tuple[float, float]:
    """(counts, interactions) ε of one campaign's figures on the own relay."""
    total = options.figures_epsilon or EPSILON_PER_CAMPAIGN
    counts = round(total * COUNTS_SHARE, 6)
    return counts, round(total - counts, 6)


def business_epsilon(sim_plan: SimPlan) -> float:
    """The own relay's privacy budget per business: the relay's default when it pays for
    every campaign's figures of the busiest business, else as much as that needs, up to the
    most the relay takes. Past that the last figures wait for the budget to renew, and
    :meth:`OwnRelay.publish_figures` moves the clock on until they are out."""
    busiest = max(Counter(c.business for c in sim_plan.campaigns).values(), default=0)
    needed = round(busiest * sum(figures_epsilons(sim_plan.options)), 6)
    return min(MAX_BUSINESS_EPSILON, max(DEFAULT_BUSINESS_EPSILON, needed))


@dataclass(frozen=True)
class Copy:
    """One campaign copy as the relay recorded it."""

    campaign_id: str
    msg_id: str
    recipient: str
    state: str  # scheduled, pending, acked, refused, expired, cancelled
    refusal: str | None


class SimRelay(Protocol):
    url: str
    own: bool  # the simulation's own relay: manual clock, readable database, recorded
    shuffler_url: str | None  # where devices send reports (None: straight to the relay)

    def start(self) -> None: ...

    async def forward_reports(self, everything: bool = False) -> int:
        """Have the shuffler forward what it holds (at least B; ``everything``: the rest
        too); returns how many went in a batch smaller than B."""
        ...

    async def advance_to(self, ms: int) -> float:
        """Bring the relay to virtual time ``ms`` (releasing what is due); returns the wall
        time the release began."""
        ...

    async def publish_figures(self) -> int | None:
        """Bring the relay to the time every campaign's figures are published; returns that
        virtual time, or None when the figures come later (a real clock)."""
        ...

    def stop(self) -> list[Exchange]: ...


class OwnRelay:
    """A recording relay in its own process, on a manual clock the simulation moves."""

    own = True

    def __init__(self, options: SimOptions, workdir: Path, epsilon_30d: float) -> None:
        self.workdir = workdir
        self.db_path = workdir / "relay.db"
        self.db_url = f"sqlite:///{self.db_path}"
        self.shuffler_key = workdir / "shuffler.key"
        counts, interactions = figures_epsilons(options)
        after_h = options.figures_after_h or RelaySettings.model_fields["figures_after_h"].default
        self.settings = RelaySettings(
            db=self.db_url,
            business_epsilon_30d=epsilon_30d,
            figures_epsilon_counts=counts,
            figures_epsilon_interactions=interactions,
            figures_after_h=after_h,
            template_quality=options.quality,
            marketing_cap_24h=options.effective_cap,
            # Thousands of simulated people share one loopback address and burst at once.
            rate_per_s=1000.0,
            rate_burst=5000,
            registrations_per_hour=0,
            anonymous_per_s=0,
            max_requests_in_flight_per_address=0,
            # The simulation runs a dispatcher pass itself at every moment it moves the clock
            # to; the relay's own timer would only repeat it.
            dispatch_interval_s=3600.0,
            # Every open stream re-reads its mailbox at each keepalive (sealpost/sim/persons.py
            # SIM_KEEPALIVE_S; the devices wait longer before calling a stream dead).
            keepalive_s=SIM_KEEPALIVE_S,
            shuffler_keys=[public_key_b64(load_or_create(self.shuffler_key))],
        )
        self.process = RelayProcess(self.settings, start_ms=EPOCH_MS)
        self.url = ""
        self.shuffler: EmbeddedShuffler | None = None
        self.shuffler_url: str | None = None
        self.now_ms = EPOCH_MS  # where the simulation last moved the relay's clock
        self._engine: Engine | None = None

    def start(self) -> None:
        self.process.start()
        self.url = self.process.url
        self._engine = read_engine(make_engine(self.db_url))
        self.shuffler = start_shuffler(self.workdir, self.url, self.shuffler_key)
        self.shuffler_url = self.shuffler.url

    async def forward_reports(self, everything: bool = False) -> int:
        shuffler = self.shuffler
        assert shuffler is not None, "start() the relay first"
        await asyncio.to_thread(shuffler.forward_ready)
        left = shuffler.held() if everything else 0
        if left:
            await asyncio.to_thread(shuffler.forward_ready, minimum=1)
        return left

    def shuffler_exchanges(self) -> list[Exchange]:
        """Every report the shuffler received, as it arrived."""
        return shuffler_exchanges(self.shuffler)

    async def advance_to(self, ms: int) -> float:
        # The pipe blocks; keep the clients' event loop turning meanwhile.
        began, _ = await asyncio.to_thread(self.process.advance_to, ms)
        self.now_ms = max(self.now_ms, ms)
        return began

    async def publish_figures(self) -> int:
        """Move the clock past every campaign's figures_at; a dispatcher pass there publishes
        them. Should a business's budget not pay for all of its campaigns, move on 30 days at
        a time (its oldest spends lapse) until every campaign's figures are out."""
        due = await asyncio.to_thread(self._latest_figures_at)
        await self.advance_to(max(self.now_ms, due))
        for _ in range(await asyncio.to_thread(self._campaigns) + 1):
            if not await asyncio.to_thread(self.unpublished):
                break
            await self.advance_to(self.now_ms + WINDOW_MS)
        return self.now_ms

    def _latest_figures_at(self) -> int:
        policy = figures_policy(self.settings)
        with self._session() as session:
            return max((figures_at(c, policy) for c in session.exec(select(Campaign))), default=0)

    def _campaigns(self) -> int:
        with self._session() as session:
            return int(session.exec(select(func.count()).select_from(Campaign)).one())

    def unpublished(self) -> list[str]:
        """Campaigns whose figures the relay has not published (yet)."""
        with self._session() as session:
            return list(
                session.exec(
                    select(Campaign.id).where(
                        ~exists().where(col(PublishedFigures.campaign_id) == col(Campaign.id))
                    )
                )
            )

    def streams(self) -> int:
        return self.process.streams()

    def _session(self) -> Session:
        assert self._engine is not None, "start() the relay first"
        return Session(self._engine)

    def released_at(self, at_ms: int) -> Counter[str]:
        """Campaign copies released into mailboxes at virtual time ``at_ms``, per campaign."""
        table = MailboxEntry.__table__  # type: ignore[attr-defined]
        with self._session() as session:
            rows = session.execute(
                select(table.c.campaign_id).where(
                    col(table.c.campaign_id).is_not(None),
                    table.c.released_at == at_ms,
                    col(table.c.state).in_(("pending", "acked")),
                )
            )
            return Counter(r.campaign_id for r in rows)

    def next_due(self, from_ms: int, before_ms: int) -> int | None:
        """The first send time in [from_ms, before_ms) of a copy still scheduled: a
        campaign's, or one held while its template was paused (server/quality.py)."""
        table = MailboxEntry.__table__  # type: ignore[attr-defined]
        with self._session() as session:
            found = session.execute(
                select(func.min(table.c.not_before)).where(
                    table.c.state == "scheduled",
                    table.c.not_before >= from_ms,
                    table.c.not_before < before_ms,
                )
            ).scalar_one()
            return None if found is None else int(found)

    def unacked(self) -> int:
        """Messages released into mailboxes and not yet acked by their clients."""
        table = MailboxEntry.__table__  # type: ignore[attr-defined]
        with self._session() as session:
            return int(
                session.execute(
                    select(func.count()).select_from(table).where(table.c.state == "pending")
                ).scalar_one()
            )

    def tokens_issued(self, campaign_ids: list[str]) -> int:
        """Signal tokens the relay has issued for copies of these campaigns."""
        table = TokenIssue.__table__  # type: ignore[attr-defined]
        with self._session() as session:
            return int(
                session.execute(
                    select(func.count())
                    .select_from(table)
                    .where(col(table.c.campaign_id).in_(campaign_ids))
                ).scalar_one()
            )

    def copies(self) -> list[Copy]:
        """Every campaign copy the relay holds a row for, with its state."""
        table = MailboxEntry.__table__  # type: ignore[attr-defined]
        with self._session() as session:
            rows = session.execute(
                select(
                    table.c.campaign_id,
                    table.c.msg_id,
                    table.c.recipient,
                    table.c.state,
                    table.c.refusal,
                ).where(col(table.c.campaign_id).is_not(None))
            )
            return [Copy(r.campaign_id, r.msg_id, r.recipient, r.state, r.refusal) for r in rows]

    def stop(self) -> list[Exchange]:
        if self.shuffler is not None:
            self.shuffler.stop()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        return self.process.stop()

    def kill(self) -> None:
        if self.shuffler is not None:
            self.shuffler.stop()
        self.process.kill()

    @property
    def cpu_s(self) -> float:
        return self.process.cpu_s


class ExternalRelay:
    """An existing relay at ``url``: real clock, its own settings, nothing recorded. Devices
    send reports straight to it (it must allow that: ``allow_direct_signals``), or to the
    shuffler named by SEALPOST_SHUFFLER_URL."""

    own = False
    shuffler_url: str | None = None

    async def forward_reports(self, everything: bool = False) -> int:
        return 0  # an existing shuffler forwards on its own timer

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def start(self) -> None:
        try:
            answer = httpx.get(self.url + "/healthz", timeout=5)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"no relay answers at {self.url}: {exc}") from exc
        if answer.status_code != 200:
            raise RuntimeError(f"{self.url}/healthz answered {answer.status_code}")

    async def advance_to(self, ms: int) -> float:
        return time.time()  # its clock is real: nothing to move

    async def publish_figures(self) -> None:
        return None  # its clock is real: the figures come days after this run

    def stop(self) -> list[Any]:
        return []
