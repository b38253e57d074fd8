"""Playing every attack on one audit run: the record the runner kept, the world's plan and
ground truth, in the shape each attack takes (``sealpost/audit/attacks/``); and the business
oracle's trials on the audited relay, which need it still running."""

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.messenger import Messenger
from sealpost.audit import checks
from sealpost.audit.attacks.business_oracle import RelayTime, Trial, play, worlds_for
from sealpost.audit.attacks.identity import Identity
from sealpost.audit.recorder import Exchange, RelayProcess
from sealpost.audit.storage import StorageDump
from sealpost.audit.world import WorldPlan, WorldResult


@dataclass
class AttackRun:
    """What the attacks are played on: the audit's record of one run, and its plan."""

    exchanges: list[Exchange]  # what the clients sent the relay
    shuffler: list[Exchange]  # what the devices sent the shuffler
    storage: StorageDump
    world: WorldResult
    plan: WorldPlan
    batch: int  # the shuffler's B
    max_hold_s: float
    shuffler_key: str  # the key the audited shuffler signs its batches with
    db_path: Path  # the relay's database (still there while the checks run)
    seed: int

    def sender(self) -> dict[str, str]:
        """Token input -> the person who sent that report (ground truth)."""
        return {r.token_input: r.handle for r in self.world.redemptions}

    def identities(self) -> list[Identity]:
        """Every account the relay knows, with what could be derived from: handle, the
        phone numbers its businesses hold (persons), its public keys (from registration)."""
        keys = registered_keys(self.exchanges)
        phones = {
            p.handle: sorted({v["phone"] for v in p.variables.values() if "phone" in v})
            for p in self.plan.persons
        }
        return [
            Identity(handle=h, phones=phones.get(h, []), keys=keys.get(h, []))
            for h in self.world.handles
        ]


def registered_keys(exchanges: list[Exchange]) -> dict[str, list[str]]:
    """Each account's public keys (base64), as its registration sent them to the relay."""
    found: dict[str, list[str]] = {}
    for ex in exchanges:
        if ex.method == "POST" and ex.path == "/v1/accounts" and ex.status in (200, 201):
            try:
                body = json.loads(ex.body)
            except ValueError:
                continue
            found[str(body.get("handle"))] = [str(body.get("sign_key")), str(body.get("box_key"))]
    return found


def run_attacks(run: AttackRun, timings: dict[str, float] | None = None) -> list[checks.Check]:
    """The attacks (sealpost/audit/attacks/), each a check with its measured advantage."""
    from sealpost.audit.attacks import (
        connections,
        existence,
        identity,
        kept,
        noise,
        timing,
        tokens,
    )
    from sealpost.audit.received import REPORT_PATHS, counted_reports

    found: list[checks.Check] = []

    def timed(name: str, play: Callable[[], checks.Check]) -> None:
        began = time.perf_counter()
        found.append(play())
        if timings is not None:
            timings[f"checks.{name}"] = round(time.perf_counter() - began, 3)

    opens = {p.handle: p.opens for p in run.plan.persons}
    timed(
        "timing_linkage",
        lambda: timing.timing_attack(
            run.exchanges, run.world, opens, run.batch, run.max_hold_s, run.seed
        ),
    )
    reports = counted_reports(run.exchanges)
    sender = run.sender()
    anonymous = [ex for ex in run.exchanges if ex.method == "POST" and ex.path in REPORT_PATHS]
    anonymous += run.shuffler
    timed(
        "identity_values",
        lambda: identity.identity_values(anonymous, reports, run.identities(), sender),
    )
    keys = registered_keys(run.exchanges)
    timed(
        "token_linkage",
        lambda: tokens.token_linkage(reports, run.exchanges, run.world.handles, keys, sender),
    )
    timed(
        "connection_linkage",
        lambda: connections.connection_linkage(
            run.exchanges, run.shuffler, run.shuffler_key, sender
        ),
    )
    timed("randomized_response", lambda: noise.randomized_response(run.world, reports))
    issued = existence.issued_per_campaign(run.exchanges)
    timed("report_existence", lambda: existence.report_existence(run.world, reports, issued))
    batch_of = {r.report.token_input: r.exchange.index for r in reports}
    sent_at = {r.token_input: r.sent_at for r in run.world.redemptions if r.sent_at is not None}
    timed(
        "relay_keeps",
        lambda: kept.relay_keeps(
            run.storage, set(sender), run.world.start, run.db_path, batch_of, sent_at
        ),
    )
    return found


async def play_oracle(
    relay: RelayProcess, home: Path, now_ms: int, trials: int, seed: int
) -> list[Trial]:
    """The business oracle's trials on the audited relay, whose clock stands at ``now_ms``."""
    opened: list[Messenger] = []
    clock = {"now": now_ms}

    async def make_account(handle: str, *, business: bool = False, **kwargs: Any) -> Messenger:
        messenger = await Messenger.create_account(
            home,
            handle,
            handle,
            relay.url,
            business=business,
            country=None if business else "+39",
            **kwargs,
        )
        opened.append(messenger)
        return messenger

    async def advance_to(ms: int) -> None:
        clock["now"] = ms
        await asyncio.to_thread(relay.advance_to, ms)

    async def release() -> None:
        await advance_to(clock["now"])

    time_ = RelayTime(now=lambda: clock["now"], release=release, advance_to=advance_to)
    try:
        return await play(make_account, time_, worlds_for(trials, seed))
    finally:
        for messenger in opened:
            await messenger.aclose()
