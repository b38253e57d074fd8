"""Running a campaign: personalise and seal each copy locally, submit in batches."""

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from nacl.public import PublicKey

from client.business.audience import Audience, AudienceRow, BadRowPolicy, apply_policy
from client.business.journal import CampaignJournal
from client.business.sealing import Sealer
from client.heap import settled_heap
from client.relay_api import RelayAPI, RelayError, RelayUnavailable
from shared.api import CampaignCreate, CampaignReport, TemplateInfo
from shared.encoding import b64decode
from shared.identifiers import new_campaign_id
from shared.keys import AccountKeys
from shared.templates import template_hash, variable_names, variable_problems
from shared.version import MAX_BATCH_ENVELOPES

T = TypeVar("T")
SEAL_AHEAD_BATCHES = 4  # sealed batches waiting for the wire, at most (bounds memory)
LOOKUPS_IN_FLIGHT = 4
STOP_CODES = {"budget_exhausted", "campaign_stopped", "insufficient_balance"}
# How long a run waits for a relay that went away, retrying with backoff, before it stops
# (resumable) rather than give up on the first dropped connection.
RELAY_WAIT_S = 120.0
Progress = Callable[[int, int], None]  # (copies handled so far, total)


class CampaignError(Exception):
    """The campaign cannot start; the message says why and what to do."""


class CampaignInterrupted(Exception):
    """The relay stayed away longer than the run would wait: the campaign is journalled
    (client/business/journal.py) and resumes exactly once, without sending anyone a second
    copy. ``run`` holds what was submitted before."""

    def __init__(self, run: "CampaignRun", total: int, cause: Exception) -> None:
        super().__init__(
            f"campaign {run.campaign.id} interrupted after {run.submitted} of {total} copies: "
            f"{cause}"
        )
        self.run = run
        self.total = total


@dataclass
class CampaignRun:
    campaign: CampaignReport
    submitted: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # error code -> count
    stopped: str | None = None  # why submission stopped early
    skipped_rows: list[tuple[int, str]] = field(default_factory=list)


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def resolve_audience(
    api: RelayAPI,
    audience: Audience,
    on_chunk: Callable[[list[AudienceRow]], None] | None = None,
    keys: dict[str, PublicKey] | None = None,
) -> dict[str, PublicKey]:
    """Box keys of every row's handle; rows that are not persons on the relay are dropped.

    ``on_chunk(rows)`` hears about each looked-up chunk's good rows, in audience order, as
    soon as their keys are in ``keys`` (filled as it goes, and returned): a campaign starts
    sealing them while the rest is looked up.
    """
    rows = list(audience.rows)
    lines = {row.handle: row.line for row in rows}
    chunks = _chunks(rows, MAX_BATCH_ENVELOPES)
    keys = {} if keys is None else keys
    dropped: list[tuple[int, str]] = []
    # A few lookups in flight at once: their round trips overlap.
    for i in range(0, len(chunks), LOOKUPS_IN_FLIGHT):
        group = chunks[i : i + LOOKUPS_IN_FLIGHT]
        answers = await asyncio.gather(*(api.lookup_many([r.handle for r in c]) for c in group))
        for chunk, found in zip(group, answers, strict=True):
            dropped += [(lines[h], f"{h}: no such account on the relay") for h in found.unknown]
            for account in found.accounts:
                if account.kind != "person":
                    dropped.append((lines[account.handle], f"{account.handle} is not a person"))
                else:
                    keys[account.handle] = PublicKey(b64decode(account.box_key))
            if on_chunk is not None:
                on_chunk([row for row in chunk if row.handle in keys])
    audience.drop_many(dropped)
    return keys


class _SealPipeline:
    """Batches of rows in submission order, sealed a few batches ahead of the wire."""

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer
        self.waiting: deque[list[AudienceRow]] = deque()  # rows known, not being sealed yet
        self.sealing: deque[asyncio.Future[list[str]]] = deque()

    def add(self, rows: Sequence[AudienceRow]) -> None:
        for batch in _chunks(rows, MAX_BATCH_ENVELOPES):
            if batch:
                self.waiting.append(list(batch))
        self.seal_ahead()

    def seal_ahead(self) -> None:
        # With one batch of lookahead the workers sat idle whenever the relay was slower.
        while self.waiting and len(self.sealing) < SEAL_AHEAD_BATCHES:
            rows = self.waiting.popleft()
            self.sealing.append(asyncio.ensure_future(self.sealer.seal(rows)))

    def __bool__(self) -> bool:
        return bool(self.sealing or self.waiting)

    async def next(self) -> list[str]:
        """The next batch's envelopes (JSON), in order; keeps the workers busy meanwhile."""
        self.seal_ahead()
        envelopes = await self.sealing.popleft()
        self.seal_ahead()
        return envelopes

    def cancel(self) -> None:
        self.waiting.clear()
        for future in self.sealing:
            future.cancel()


@contextmanager
def _sealing(sealer: Sealer) -> Iterator[_SealPipeline]:
    """A pipeline over ``sealer`` for the length of a campaign's submission; its workers stop
    when the block ends, and the heap stays settled meanwhile (client/heap.py)."""
    with settled_heap():
        pipeline = _SealPipeline(sealer)
        try:
            yield pipeline
        finally:
            pipeline.cancel()
            sealer.close()


@dataclass
class PreparedCampaign:
    """A campaign created on the relay, with its audience resolved and ready to seal."""

    template: TemplateInfo
    rows: list[AudienceRow]
    box_keys: dict[str, PublicKey]
    report: CampaignReport
    skipped_rows: list[tuple[int, str]]


async def prepare_campaign(
    api: RelayAPI,
    business: str,
    template: TemplateInfo,
    audience: Audience,
    *,
    budget: int,
    send_at: int | None = None,
    name: str = "",
    policy: BadRowPolicy = "skip",
    expires_in_days: int | None = None,
) -> PreparedCampaign:
    """Check the template, resolve the audience's keys, and create the campaign on the relay."""
    _check(business, template, audience, policy)
    box_keys = await resolve_audience(api, audience)
    apply_policy(audience, policy)
    report = await _open(api, template, audience, budget, send_at, name, expires_in_days)
    return PreparedCampaign(
        template=template,
        rows=list(audience.rows),
        box_keys=box_keys,
        report=report,
        skipped_rows=list(audience.problems),
    )


async def submit_campaign(
    api: RelayAPI,
    keys: AccountKeys,
    business: str,
    prepared: PreparedCampaign,
    *,
    on_progress: Progress | None = None,
    workers: int = 2,
    relay_wait_s: float = RELAY_WAIT_S,
) -> CampaignRun:
    """Seal one copy per row and submit them in batches, stopping if the money runs out;
    :class:`CampaignInterrupted` if the relay stays away longer than ``relay_wait_s``."""
    template, rows, report = prepared.template, prepared.rows, prepared.report
    run = CampaignRun(campaign=report, skipped_rows=prepared.skipped_rows)
    sealer = Sealer(
        keys, business, template, report.id, prepared.box_keys, copies=len(rows), workers=workers
    )
    with _sealing(sealer) as pipeline:
        pipeline.add(rows)
        await _submit(api, pipeline, run, len(rows), on_progress, relay_wait_s=relay_wait_s)
    run.campaign = await api.campaign(report.id)
    return run


async def _submit(
    api: RelayAPI,
    pipeline: _SealPipeline,
    run: CampaignRun,
    total: int,
    on_progress: Progress | None,
    journal: CampaignJournal | None = None,
    relay_wait_s: float = RELAY_WAIT_S,
) -> None:
    """Submit the pipeline's batches one after another (each journalled first), stopping if
    the money runs out."""
    while pipeline:
        envelopes = await pipeline.next()
        if journal is not None:  # on disk before it leaves; off the loop, which feeds sealing
            await asyncio.to_thread(journal.record, run.campaign.id, envelopes)
        if await _send(api, envelopes, run, total, on_progress, relay_wait_s):
            return


async def _send(
    api: RelayAPI,
    envelopes: list[str],
    run: CampaignRun,
    total: int,
    on_progress: Progress | None,
    relay_wait_s: float,
) -> bool:
    """One batch, retried while the relay is away; True when the campaign must stop."""
    try:
        response = await _retrying(lambda: api.send_batch_json(envelopes), relay_wait_s)
    except RelayUnavailable as exc:
        raise CampaignInterrupted(run, total, exc) from exc
    run.submitted += len(envelopes)
    run.accepted += response.accepted
    run.duplicate += response.duplicate
    for result in response.results:
        if result.error:
            run.rejected[result.error.code] += 1
    if on_progress:
        on_progress(run.submitted, total)
    stopping = [r.error for r in response.results if r.error and r.error.code in STOP_CODES]
    if stopping:
        run.stopped = stopping[0].message
        return True
    return False


async def _create_once(api: RelayAPI, create: CampaignCreate, wait_s: float) -> CampaignReport:
    """Create the campaign, retrying while the relay is away; a retry whose first attempt
    did reach the relay finds the campaign there (its id is the business's own)."""
    try:
        return await _retrying(lambda: api.create_campaign(create), wait_s)
    except RelayError as exc:
        if exc.code != "campaign_exists" or create.id is None:
            raise
        return await api.campaign(create.id)


async def _retrying(call: Callable[[], Awaitable[T]], wait_s: float) -> T:
    """``call()``, again with backoff (1 s doubling to 15 s) while the relay cannot be reached,
    for up to ``wait_s``; then the last RelayUnavailable. A resent batch is safe: the relay
    answers copies it already holds ``duplicate``."""
    deadline = time.monotonic() + wait_s
    delay = 1.0
    while True:
        try:
            return await call()
        except RelayUnavailable:
            if time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15.0)


async def _open(
    api: RelayAPI,
    template: TemplateInfo,
    audience: Audience,
    budget: int,
    send_at: int | None,
    name: str,
    expires_in_days: int | None,
) -> CampaignReport:
    """Create the campaign on the relay for the audience as it stands (resolved)."""
    return await api.create_campaign(
        _create_body(template, audience, budget, send_at, name, expires_in_days)
    )


def _create_body(
    template: TemplateInfo,
    audience: Audience,
    budget: int,
    send_at: int | None,
    name: str,
    expires_in_days: int | None,
) -> CampaignCreate:
    return CampaignCreate(
        template_id=template.id,
        name=name,
        send_at=send_at,
        budget=budget,
        audience_size=len(audience.rows),
        expires_in_days=expires_in_days,
    )


def _check(business: str, template: TemplateInfo, audience: Audience, policy: BadRowPolicy) -> None:
    """What can be refused before asking the relay anything."""
    if template.business != business:
        raise CampaignError(f"template {template.id} belongs to {template.business}")
    if template_hash(business, template.template) != template.hash:
        raise CampaignError(f"the registry's hash for {template.id} does not match its text")
    needed = set(variable_names(template.template))
    if any(set(row.variables) != needed for row in audience.rows):
        raise CampaignError("audience columns do not match the template's variables")
    # A value not of its declared type would be quarantined on the person's device: a bad row,
    # caught before it is paid for.
    mistyped = [
        (row.line, "; ".join(wrong))
        for row in audience.rows
        if (wrong := variable_problems(template.template, row.variables))
    ]
    if mistyped:
        audience.drop_many(mistyped)
    apply_policy(audience, policy)  # bad CSV rows under "stop", or no rows at all


async def run_campaign(
    api: RelayAPI,
    keys: AccountKeys,
    business: str,
    template: TemplateInfo,
    audience: Audience,
    *,
    budget: int,
    send_at: int | None = None,
    name: str = "",
    policy: BadRowPolicy = "skip",
    expires_in_days: int | None = None,
    on_progress: Progress | None = None,
    workers: int = 2,
    journal: CampaignJournal | None = None,
    relay_wait_s: float = RELAY_WAIT_S,
) -> CampaignRun:
    """Create the campaign on the relay and submit one sealed copy per audience row.

    The campaign id is chosen here, so that each chunk of the audience is sealed as soon as
    its keys are known, while the rest is still being looked up; the campaign is created on
    the relay once the whole audience is resolved (its size is then known), and only then
    does any copy leave. Nothing is sent if the audience turns out bad under ``stop``.

    With a ``journal``, the campaign and every batch are journalled before they leave; if the
    relay stays away longer than ``relay_wait_s``, :class:`CampaignInterrupted` is raised and
    :func:`resume_campaign` finishes the run exactly once.
    """
    _check(business, template, audience, policy)
    campaign_id = new_campaign_id()
    sealer = Sealer(
        keys, business, template, campaign_id, {}, copies=len(audience.rows), workers=workers
    )
    with _sealing(sealer) as pipeline:
        await resolve_audience(api, audience, on_chunk=pipeline.add, keys=sealer.box_keys)
        apply_policy(audience, policy)
        create = _create_body(template, audience, budget, send_at, name, expires_in_days)
        create.id = campaign_id
        if journal is not None:
            journal.begin(campaign_id, template.id, create, list(audience.rows))
        report = await _create_once(api, create, relay_wait_s)
        run = CampaignRun(campaign=report, skipped_rows=list(audience.problems))
        await _submit(api, pipeline, run, len(audience.rows), on_progress, journal, relay_wait_s)
    if journal is not None:
        journal.finish(campaign_id)
    run.campaign = await api.campaign(campaign_id)
    return run


async def resume_campaign(
    api: RelayAPI,
    keys: AccountKeys,
    business: str,
    template: TemplateInfo,
    journal: CampaignJournal,
    campaign_id: str,
    *,
    on_progress: Progress | None = None,
    workers: int = 2,
    relay_wait_s: float = RELAY_WAIT_S,
) -> CampaignRun:
    """Finish a journalled campaign: create it if the relay never got it, send the journalled
    copies again byte for byte (the relay answers those it holds ``duplicate``), then seal and
    send the rows that never left."""
    found = journal.load(campaign_id)
    if found is None:
        raise CampaignError(f"no journal of campaign {campaign_id} in this profile")
    try:
        report = await _retrying(lambda: api.campaign(campaign_id), relay_wait_s)
    except RelayError as exc:
        if exc.code != "unknown_campaign":
            raise
        report = await _create_once(api, found.create, relay_wait_s)
    run = CampaignRun(campaign=report)
    total = len(found.rows)
    sent_before = found.sealed_for
    for batch in _chunks(found.envelopes, MAX_BATCH_ENVELOPES):
        if await _send(api, list(batch), run, total, on_progress, relay_wait_s):
            journal.finish(campaign_id)
            run.campaign = await api.campaign(campaign_id)
            return run
    rest = [row for row in found.rows if row.handle not in sent_before]
    if rest:
        sealer = Sealer(
            keys, business, template, campaign_id, {}, copies=len(rest), workers=workers
        )
        with _sealing(sealer) as pipeline:
            await resolve_audience(api, Audience(rows=rest), keys=sealer.box_keys)
            pipeline.add([row for row in rest if row.handle in sealer.box_keys])
            await _submit(api, pipeline, run, total, on_progress, journal, relay_wait_s)
    journal.finish(campaign_id)
    run.campaign = await api.campaign(campaign_id)
    return run
