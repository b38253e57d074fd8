"""Running the audit: a recording relay, the seeded world, the storage dump, then the checks."""

import asyncio
import gc
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session

from sealpost.audit import checks
from sealpost.audit.attacks.business_oracle import business_oracle
from sealpost.audit.attacks.on_run import AttackRun, play_oracle, run_attacks
from sealpost.audit.plants import planted
from sealpost.audit.recorder import Exchange, Recorder, RelayProcess
from sealpost.audit.storage import StorageDump, dump_rows, read_files
from sealpost.audit.timeline import ShufflerTimer
from sealpost.audit.world import CAMPAIGNS, WorldPlan, WorldResult, plan_world, seed_world
from server.db import make_engine, read_engine
from server.settings import RelaySettings
from server.signals import tally_of
from shared.shuffled import SHUFFLED_PATH, SHUFFLER_HEADERS, public_key_b64
from shared.signals import decode_report
from shuffler.embedded import EmbeddedShuffler
from shuffler.keys import load_or_create
from shuffler.settings import ShufflerSettings

# The business oracle's trials: each a business, two puppets and a target. At 40, a guess
# right 83% of the time fails (ε = 0.4 allows 60% + 3 standard errors).
ORACLE_TRIALS = 40
# From this many persons, the persons are played on worker processes.
WORKERS_FROM_PERSONS = 200
HOUR_MS = 3_600_000
# The audited shuffler's batch size: the shuffler's default.
SHUFFLER_BATCH: int = ShufflerSettings.model_fields["batch"].default
SHUFFLER_HOLD_S: float = ShufflerSettings.model_fields["max_hold_s"].default


@dataclass
class AuditOptions:
    persons: int = 200
    seed: int = 1
    keep: Path | None = None  # keep the relay database and profiles here
    workers: int | None = None  # processes playing the persons; None: default_workers(persons)
    oracle_trials: int = ORACLE_TRIALS  # the business oracle's trials (businesses)
    # A leak to plant for this run (plants.py; the selftest's hook): None for the real code.
    plant: str | None = None


def figures_settings(settings: RelaySettings) -> dict[str, Any]:
    """How the audited relay publishes figures to businesses (for the reports)."""
    return {
        "after_h": settings.figures_after_h,
        "epsilon_per_campaign": round(
            settings.figures_epsilon_counts + settings.figures_epsilon_interactions, 6
        ),
        "business_epsilon_30d": settings.business_epsilon_30d,
    }


@dataclass
class AuditResult:
    options: AuditOptions
    figures: dict[str, Any]  # figures_settings of the audited relay
    checks: list[checks.Check]
    estimates: list[dict[str, Any]]
    traffic: dict[str, Any]
    storage: dict[str, Any]
    world: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "persons": self.options.persons,
            "seed": self.options.seed,
            "plant": self.options.plant,
            "figures": self.figures,
            "checks": [c.to_json() for c in self.checks],
            "estimates": self.estimates,
            "traffic": self.traffic,
            "storage": self.storage,
            "world": self.world,
            "timings_s": self.timings,
        }


def default_workers(persons: int) -> int:
    """Worker processes for the simulated persons: none for small worlds, where starting
    them costs more than they save; otherwise one a core, at most two (the relay needs one
    too)."""
    if persons < WORKERS_FROM_PERSONS:
        return 0
    return max(1, min(2, os.cpu_count() or 1))


def scratch_dir(prefix: str = "sealpost-audit-") -> Path:
    """A fresh temporary directory, on a RAM disk when there is one: thousands of simulated
    profiles each fsync their keys."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


async def _replay_and_keys(
    relay: RelayProcess, world: WorldResult, reports_now: Callable[[str], int]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Replay one captured report request verbatim; fetch each campaign's key anonymously.

    ``reports_now`` reads a campaign's report count from the relay's own aggregation (a
    business only sees it with noise, and reading it that way adds no signed request to the
    recording).
    """
    replay: dict[str, Any] = {}
    keys: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=relay.url, timeout=15) as anonymous:
        for cid in world.campaigns.values():
            answer = await anonymous.get(f"/v1/signals/keys/{cid}")
            keys[cid] = answer.json().get("public_key", "")
        # A shuffler's batch, replayed with its signature (a resend by a shuffler that
        # crashed, or by anyone who captured it); else a report sent straight to the relay.
        captured = relay.first("POST", SHUFFLED_PATH) or relay.first("POST", "/v1/signals")
        if captured is not None:
            report = decode_report(json.loads(captured.body)["reports"][0].encode())
            label = next(k for k, v in world.campaigns.items() if v == report.campaign_id)
            replay["campaign"] = label
            replay["path"] = captured.path
            replay["reports_before"] = reports_now(report.campaign_id)
            signature = {
                h: value for h in SHUFFLER_HEADERS if (value := captured.header(h)) is not None
            }
            answer = await anonymous.post(
                captured.path,
                content=captured.body,
                headers={"Content-Type": "application/json", **signature},
            )
            answered = answer.json()
            # A batch's answer names each report: summed by reason, so the report stays short.
            refused = answered.get("refused") if isinstance(answered, dict) else None
            if isinstance(refused, dict):
                answered = {**answered, "refused": dict(Counter(refused.values()))}
            replay["answer"] = answered
            replay["counted"] = answered.get("counted") if isinstance(answered, dict) else None
            replay["reports_after"] = reports_now(report.campaign_id)
    return replay, keys


def _report_counter(db_url: str) -> Callable[[str], int]:
    """Reads a campaign's report count straight from the relay's database (read-only)."""

    def reports_now(campaign_id: str) -> int:
        engine = read_engine(make_engine(db_url))
        try:
            with Session(engine) as session:
                return tally_of(session, campaign_id)[0]
        finally:
            engine.dispose()

    return reports_now


@dataclass
class RelayProbe:
    """What the audit learns from the relay after the clients are done, before it stops."""

    client_exchanges: int  # requests made by the clients; what follows is the audit's own
    replay: dict[str, Any]
    keys: dict[str, str]  # campaign id -> public key fetched anonymously
    counted: dict[str, int]  # campaign id -> reports the relay counted, from its database


def probe_running_relay(
    relay: RelayProcess, world: WorldResult, db_path: Path, storage: StorageDump
) -> RelayProbe:
    """Once the clients are done: replay a captured report, fetch each campaign's key
    anonymously, and dump the relay's files (with the WAL) and rows while it still runs."""
    db_url = f"sqlite:///{db_path}"
    clients = relay.count()  # what the audit itself sends next is not client traffic
    reports_now = _report_counter(db_url)
    counted = {cid: reports_now(cid) for cid in world.campaigns.values()}
    replay, keys = asyncio.run(_replay_and_keys(relay, world, reports_now))
    read_files(db_path, storage)
    dump_rows(db_url, storage)
    return RelayProbe(client_exchanges=clients, replay=replay, keys=keys, counted=counted)


def run_checks(
    exchanges: list[Exchange],
    storage: StorageDump,
    world: WorldResult,
    probe: RelayProbe,
    timings: dict[str, float] | None = None,
    shuffler: list[Exchange] | None = None,
) -> tuple[list[checks.Check], list[dict[str, Any]]]:
    """The seven checks on what clients sent and the relay kept; also the estimates table.

    ``shuffler``: what the shuffler received from devices (its storage is in ``storage``
    too), checked as the anonymous channel it is. ``timings`` (if given) gets the seconds
    each check took."""
    clock = time.perf_counter()

    def timed(check: checks.Check) -> checks.Check:
        nonlocal clock
        now = time.perf_counter()
        if timings is not None:
            timings[f"checks.{check.name}"] = round(now - clock, 3)
        clock = now
        return check

    everything = exchanges + (shuffler or [])
    results = [timed(checks.canaries_absent(everything, storage, world.canaries))]
    signal_check, reports = checks.signal_requests(exchanges, world, shuffler)
    results.append(timed(signal_check))
    results.append(
        timed(checks.unlinkability(exchanges, storage, world, reports, probe.keys, shuffler))
    )
    results.append(timed(checks.declared_schemas(exchanges)))
    results.append(timed(checks.counted_once(world, probe.replay, probe.counted)))
    results.append(timed(checks.business_view_noisy(exchanges, world)))
    estimate_check, table = checks.estimates(world)
    results.append(timed(estimate_check))
    return results, table


def run_audit(options: AuditOptions) -> AuditResult:
    """Run the whole audit; raises only if the world cannot be set up at all."""
    workdir = scratch_dir()
    db_path = workdir / "relay.db"
    db_url = f"sqlite:///{db_path}"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    plan: WorldPlan = plan_world(options.persons, options.seed)
    # The relay's own defaults for what businesses see: the audit checks those figures.
    # Reports go through a shuffler, as in a deployment: the relay trusts its key only.
    shuffler_key = workdir / "shuffler.key"
    settings = RelaySettings(
        db=db_url,
        # Each person gets up to three campaigns on the same day (two big, one small).
        marketing_cap_24h=len(CAMPAIGNS),
        rate_per_s=1000.0,
        rate_burst=5000,
        registrations_per_hour=0,  # every simulated person registers from loopback
        anonymous_per_s=0,  # and asks for keys and the key log from there
        max_requests_in_flight_per_address=0,
        shuffler_keys=[public_key_b64(load_or_create(shuffler_key))],
    )
    storage = StorageDump()
    workers = default_workers(options.persons) if options.workers is None else options.workers
    timings["workers"] = workers
    # A manual clock, standing at the start: every campaign goes out at that moment, and the
    # clock moves only to publish the figures, days later (signatures still use wall time).
    start_ms = int(time.time() * 1000)
    relay = RelayProcess(settings, start_ms=start_ms, plant=options.plant)

    async def publish() -> None:
        due = start_ms + settings.figures_after_h * HOUR_MS
        await asyncio.to_thread(relay.advance_to, due)

    try:
        relay.start()
        try:
            # A shuffler plant stays in place for the shuffler's whole life.
            with planted(options.plant, "shuffler"):
                shuffler = start_shuffler(workdir, relay.url, shuffler_key)
                try:
                    world = asyncio.run(
                        seed_world(
                            plan,
                            relay.url,
                            workdir / "home",
                            shuffler_timer(shuffler),
                            shuffler.url,
                            start=start_ms / 1000,
                            workers=workers,
                            publish=publish,
                            plant=options.plant,
                        )
                    )
                finally:
                    shuffler.stop()
            shuffler_public_key = shuffler.public_key
            if world.timeline is not None and world.timeline.last_below_b:
                timings["shuffler_last_batch_below_b"] = world.timeline.last_below_b
            gc.unfreeze()
            timings.update({f"world.{k_}": v for k_, v in world.timings.items()})
            probe = probe_running_relay(relay, world, db_path, storage)
            read_files(workdir / "shuffler.db", storage, tag=" (shuffler)")
            # The business's attack comes after the world is recorded and dumped: its own
            # traffic is not client traffic, and it moves the relay's clock days on.
            began = time.perf_counter()
            published_at = start_ms + settings.figures_after_h * HOUR_MS
            trials = asyncio.run(
                play_oracle(
                    relay, workdir / "oracle", published_at, options.oracle_trials, options.seed
                )
            )
            timings["business_oracle"] = round(time.perf_counter() - began, 3)
        finally:
            everything = relay.stop()
        timings["relay_cpu"] = round(relay.cpu_s, 3)
        read_files(db_path, storage, tag=" (after shutdown)")
        exchanges = everything[: probe.client_exchanges]
        at_shuffler = shuffler_exchanges(shuffler)
        timings["relay_and_clients"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        results, table = run_checks(exchanges, storage, world, probe, timings, shuffler=at_shuffler)
        results.append(business_oracle(trials))
        results += run_attacks(
            AttackRun(
                exchanges=exchanges,
                shuffler=at_shuffler,
                storage=storage,
                world=world,
                plan=plan,
                batch=SHUFFLER_BATCH,
                max_hold_s=SHUFFLER_HOLD_S,
                shuffler_key=shuffler_public_key,
                db_path=db_path,
                seed=options.seed,
            ),
            timings,
        )
        timings["checks"] = round(time.perf_counter() - started, 3)
    finally:
        if options.keep:
            options.keep.mkdir(parents=True, exist_ok=True)
            shutil.copytree(workdir, options.keep / workdir.name, dirs_exist_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)

    return AuditResult(
        options=options,
        figures=figures_settings(settings),
        checks=results,
        estimates=table,
        traffic=traffic_summary(exchanges, at_shuffler),
        storage={
            "files": {name: len(blob) for name, blob in storage.files.items()},
            "rows": storage.row_counts,
            "columns": storage.columns,
        },
        world={
            "persons": options.persons,
            "businesses": world.businesses,
            "campaigns": world.campaigns,
            "copies_accepted": {
                label: world.targeted[cid] for label, cid in world.campaigns.items()
            },
            "reports_sent": {
                label: world.reporters.get(cid, 0) for label, cid in world.campaigns.items()
            },
            "anonymous_requests": world.anonymous_requests,
            "chats": len(plan.chats) + len(plan.replies),
            "canaries": len(world.canaries),
        },
        timings=timings,
    )


def traffic_summary(
    exchanges: list[Exchange], shuffler: list[Exchange] | None = None
) -> dict[str, Any]:
    """Requests and bytes at the relay, in total and per declared endpoint; and the reports
    the shuffler received."""
    per: dict[str, int] = {}
    for ex in exchanges:
        route = next((r for r in checks.ROUTES if r.matches(ex.method, ex.path)), None)
        key = (
            f"POST {ex.path}"
            if checks.is_signal_report(ex)
            else f"{route.method} {route.pattern}"
            if route
            else f"{ex.method} {ex.path} (undeclared)"
        )
        per[key] = per.get(key, 0) + 1
    summary = {
        "requests": len(exchanges),
        "request_bytes": sum(len(ex.wire) for ex in exchanges),
        "answer_bytes": sum(len(ex.response) for ex in exchanges),
        "per_endpoint": dict(sorted(per.items(), key=lambda kv: -kv[1])),
    }
    if shuffler is not None:
        summary["shuffler_requests"] = len(shuffler)
    return summary


def start_shuffler(workdir: Path, relay_url: str, key_path: Path) -> EmbeddedShuffler:
    """The audited shuffler, in this process, behind the same recording layer as the relay.
    It forwards only when told: by the audit's timeline (:func:`shuffler_timer`), or by
    :func:`forward_everything` once every report is sent (the simulator)."""
    settings = ShufflerSettings(
        db=workdir / "shuffler.db",
        relay=relay_url,
        key_path=key_path,
        batch=SHUFFLER_BATCH,
        max_hold_s=SHUFFLER_HOLD_S,
        auto_forward=False,
    )
    return EmbeddedShuffler(settings, wrap=Recorder).start()


def forward_everything(shuffler: EmbeddedShuffler, timings: dict[str, float]) -> None:
    """Forward what the shuffler holds, in batches of at least B. A world too small to fill
    one leaves fewer: those go as one last, smaller batch (said in ``timings``), so that
    the counts can still be checked."""
    shuffler.forward_ready()
    left = shuffler.held()
    if left:
        timings["shuffler_last_batch_below_b"] = left
        shuffler.forward_ready(minimum=1)


def shuffler_timer(shuffler: EmbeddedShuffler) -> ShufflerTimer:
    """The embedded shuffler as the audit's simulated time drives it (timeline.py): its own
    forwarding, called when its timer would fire."""

    async def forward(minimum: int) -> tuple[int, int]:
        done = await asyncio.to_thread(shuffler.forward_ready, minimum=minimum)
        return len(done.batches), sum(done.batches)

    async def held() -> int:
        return await asyncio.to_thread(shuffler.held)

    return ShufflerTimer(
        forward=forward,
        held=held,
        batch=shuffler.settings.batch,
        max_hold_s=shuffler.settings.max_hold_s,
    )


def shuffler_exchanges(shuffler: EmbeddedShuffler | None) -> list[Exchange]:
    if shuffler is None or not isinstance(shuffler.served, Recorder):
        return []
    return list(shuffler.served.exchanges)
