"""Running a campaign: personalise and seal each copy locally, submit in batches."""

import asyncio
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from nacl.public import PublicKey

from client.business.audience import Audience, AudienceRow, BadRowPolicy, apply_policy
from client.business.sealing import Sealer
from client.relay_api import RelayAPI
from shared.api import CampaignCreate, CampaignReport, TemplateInfo
from shared.encoding import b64decode
from shared.keys import AccountKeys
from shared.templates import template_hash, variable_names
from shared.version import MAX_BATCH_ENVELOPES

T = TypeVar("T")
SEAL_AHEAD_BATCHES = 4  # sealed batches waiting for the wire, at most (bounds memory)
Progress = Callable[[int, int], None]  # (copies handled so far, total)


class CampaignError(Exception):
    """The campaign cannot start; the message says why and what to do."""


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


async def resolve_audience(api: RelayAPI, audience: Audience) -> dict[str, PublicKey]:
    """Box keys of every row's handle; rows that are not persons on the relay are dropped."""
    lines = {row.handle: row.line for row in audience.rows}
    chunks = _chunks([row.handle for row in audience.rows], MAX_BATCH_ENVELOPES)
    # A few lookups in flight at once: their round trips overlap.
    answers = []
    for i in range(0, len(chunks), 4):
        answers += await asyncio.gather(*(api.lookup_many(list(c)) for c in chunks[i : i + 4]))
    keys: dict[str, PublicKey] = {}
    dropped: list[tuple[int, str]] = []
    for found in answers:
        dropped += [(lines[h], f"{h}: no such account on the relay") for h in found.unknown]
        for account in found.accounts:
            if account.kind != "person":
                dropped.append((lines[account.handle], f"{account.handle} is not a person"))
            else:
                keys[account.handle] = PublicKey(b64decode(account.box_key))
    audience.drop_many(dropped)
    return keys


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
    if template.business != business:
        raise CampaignError(f"template {template.id} belongs to {template.business}")
    if template_hash(business, template.template) != template.hash:
        raise CampaignError(f"the registry's hash for {template.id} does not match its text")
    needed = set(variable_names(template.template))
    box_keys = await resolve_audience(api, audience)
    apply_policy(audience, policy)
    if any(set(row.variables) != needed for row in audience.rows):
        raise CampaignError("audience columns do not match the template's variables")
    report = await api.create_campaign(
        CampaignCreate(
            template_id=template.id,
            name=name,
            send_at=send_at,
            budget=budget,
            audience_size=len(audience.rows),
            expires_in_days=expires_in_days,
        )
    )
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
) -> CampaignRun:
    """Seal one copy per row and submit them in batches, stopping if the money runs out."""
    template, rows, report = prepared.template, prepared.rows, prepared.report
    run = CampaignRun(campaign=report, skipped_rows=prepared.skipped_rows)
    sealer = Sealer(
        keys, business, template, report.id, prepared.box_keys, copies=len(rows), workers=workers
    )
    stop_codes = {"budget_exhausted", "campaign_stopped", "insufficient_balance"}
    try:
        batches = _chunks(rows, MAX_BATCH_ENVELOPES)
        # Keep the workers sealing a few batches ahead while earlier ones are on the wire:
        # with one batch of lookahead they sat idle whenever the relay was slower than them.
        sealing: deque[asyncio.Future[list[str]]] = deque()
        queued = 0

        def seal_ahead() -> None:
            nonlocal queued
            while queued < len(batches) and len(sealing) < SEAL_AHEAD_BATCHES:
                sealing.append(asyncio.ensure_future(sealer.seal(batches[queued])))
                queued += 1

        seal_ahead()
        while sealing:
            envelopes = await sealing.popleft()
            seal_ahead()
            response = await api.send_batch_json(envelopes)
            run.submitted += len(envelopes)
            run.accepted += response.accepted
            run.duplicate += response.duplicate
            for result in response.results:
                if result.error:
                    run.rejected[result.error.code] += 1
            if on_progress:
                on_progress(run.submitted, len(rows))
            stopping = [r.error for r in response.results if r.error and r.error.code in stop_codes]
            if stopping:
                run.stopped = stopping[0].message
                for future in sealing:
                    future.cancel()
                break
    finally:
        sealer.close()
    run.campaign = await api.campaign(report.id)
    return run


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
) -> CampaignRun:
    """Create the campaign on the relay and submit one sealed copy per audience row."""
    prepared = await prepare_campaign(
        api,
        business,
        template,
        audience,
        budget=budget,
        send_at=send_at,
        name=name,
        policy=policy,
        expires_in_days=expires_in_days,
    )
    return await submit_campaign(
        api, keys, business, prepared, on_progress=on_progress, workers=workers
    )
