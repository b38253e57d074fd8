"""Several relay processes sharing one PostgreSQL database (skipped where none answers)."""

import asyncio
import time

import httpx
import psycopg
import pytest
from sqlmodel import Session

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import (
    CampaignInterrupted,
    prepare_campaign,
    run_campaign,
    submit_campaign,
)
from client.events import ConnectionChanged, MessageStored
from client.relay_api import RelayAPI
from sealpost.benchmarks.seeding import seed_persons
from sealpost.relay_process import RelayProcess
from server.db import make_engine
from server.mailbox import pending_frames
from server.notify import CHANNEL, parse_announcement
from shared.api import CampaignCreate
from shared.templates import TemplateDraft
from shared.token_log import KEY_LOG_PATH, KeyLog, verify_log

pytestmark = pytest.mark.postgres

PRICE_IT = 69_100  # marketing, +39
OFFER = TemplateDraft(
    name="offer",
    category="marketing",
    body="Hi {{name}}, {{code}} takes 20% off.",
    examples={"name": "Ana", "code": "X1"},
)


@pytest.fixture
def relays(pg_url, tmp_path):
    """Two relay processes; streams keep alive only every hour, so a delivery across processes
    within a test's wait can only come from LISTEN/NOTIFY."""
    opts = {"keepalive_s": "3600", "dispatch_interval_s": "0.2", "rate_burst": "100000"}
    started = [RelayProcess(pg_url, tmp_path / f"relay{i}.log", **opts) for i in range(2)]
    yield started
    for relay in started:
        if relay._proc.poll() is None:
            relay.stop()


def audience(handles):
    return Audience(
        rows=[
            AudienceRow(line=i + 2, handle=h, variables={"name": h, "code": f"C{i}"})
            for i, h in enumerate(handles)
        ]
    )


def ledger_is_exact(pg_url: str, business: str) -> None:
    with psycopg.connect(pg_url) as conn:
        available, reserved, spent, topped = conn.execute(
            "SELECT available, reserved, spent, topped_up FROM relay_balance WHERE business=%s",
            (business,),
        ).fetchone()
        assert available + reserved + spent == topped
        sums = dict(
            conn.execute(
                "SELECT kind, sum(amount) FROM relay_ledger WHERE business=%s GROUP BY kind",
                (business,),
            ).fetchall()
        )
        assert sums.get("reserve", 0) - sums.get("charge", 0) - sums.get("refund", 0) == reserved
        assert sums.get("charge", 0) - sums.get("rebate", 0) == spent
        held = conn.execute(
            "SELECT coalesce(sum(price), 0) FROM relay_mailbox WHERE sender=%s "
            "AND state = 'scheduled'",
            (business,),
        ).fetchone()[0]
        assert held == reserved
        # Every copy released at its send time was charged, whatever became of it.
        charged = conn.execute(
            "SELECT coalesce(sum(price), 0) FROM relay_mailbox WHERE sender=%s AND "
            "(state IN ('pending', 'acked', 'refused') OR "
            "(state = 'expired' AND released_at IS NOT NULL))",
            (business,),
        ).fetchone()[0]
        assert charged == sums.get("charge", 0)


async def test_a_stream_on_one_process_gets_mail_sent_through_the_other(relays, make_account):
    a, b = relays
    alice = await make_account("alice", b)
    bob = await make_account("bob", a)
    online, got = asyncio.Event(), asyncio.Event()
    texts: list[str] = []

    def on_event(event):
        if isinstance(event, ConnectionChanged) and event.online:
            online.set()
        if isinstance(event, MessageStored):
            texts.append(event.message.text)
            got.set()

    stop = asyncio.Event()
    listener = asyncio.create_task(bob.listen(on_event, stop))
    await asyncio.wait_for(online.wait(), 10)
    # A first message shows the stream on process A is in its loop (whichever way it came);
    # the second can reach it only if process B's NOTIFY wakes it: its keepalive is an hour.
    for text in ("first", "across processes"):
        got.clear()
        await alice.send_text("bob", text)
        await asyncio.wait_for(got.wait(), 20)
    stop.set()
    await asyncio.wait_for(listener, 10)
    assert texts == ["first", "across processes"]


async def test_an_announcement_names_just_its_batch(relays, pg_url, make_account):
    """Another relay reads only the announced batch, not everything still unacked: with acks
    seconds apart, rereading all of it after every batch grew until each stream had to read
    its own mailbox."""
    a, _ = relays
    alice = await make_account("alice", a)
    await make_account("bob", a)  # not listening: everything stays pending
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        await alice.send_text("bob", "first")
        await alice.send_text("bob", "second")
        notes = [parse_announcement(n.payload) for n in listener.notifies(timeout=5, stop_after=2)]
    assert [handles for _, _, handles in notes] == [["bob"], ["bob"]]
    engine = make_engine(pg_url)
    try:
        with Session(engine) as session:
            everything = pending_frames(session, ["bob"], 100)
            assert everything is not None and len(everything["bob"]) == 2
            first, second = (f.seq for f in everything["bob"])
            assert [seqs for _, seqs, _ in notes] == [(first, first), (second, second)]
            just_new = pending_frames(session, ["bob"], 100, notes[1][1])
    finally:
        engine.dispose()
    assert just_new is not None and [f.seq for f in just_new["bob"]] == [second]
    assert parse_announcement("0a1b2c3d||bob,carol") == (
        "0a1b2c3d",
        None,
        ["bob", "carol"],
    )  # no range


async def test_campaign_through_one_delivered_through_the_other(relays, make_account):
    a, b = relays
    shop = await make_account("acme", a, business=True)
    await shop.api.top_up(10_000_000)
    template = await shop.api.register_template(OFFER)
    persons = [await make_account(f"per{i}", b) for i in range(4)]
    run = await run_campaign(
        shop.api,
        shop.profile.keys,
        "acme",
        template,
        audience([p.profile.handle for p in persons]),
        budget=5_000_000,
    )
    assert run.accepted == 4
    for person in persons:
        [message] = (await person.sync()).stored
        assert message.label == "Marketing" and f"Hi {person.profile.handle}" in message.text
    status = await shop.api.campaign(run.campaign.id)
    assert (status.sent, status.spend) == (4, 4 * PRICE_IT)


async def test_kill_9_mid_campaign_loses_and_duplicates_nothing(relays, pg_url, make_account):
    a, b = relays
    handles = [h for h, _ in seed_persons(pg_url, 3000)]
    real = [await make_account(f"real{i}", b) for i in range(3)]
    shop = await make_account("acme", a, business=True)
    await shop.api.top_up(10**10)
    template = await shop.api.register_template(OFFER)
    everyone = [p.profile.handle for p in real] + handles
    prepared = await prepare_campaign(shop.api, "acme", template, audience(everyone), budget=10**10)

    def crash_after_first_batch(done: int, total: int) -> None:
        if done == 1000:
            a.kill()

    shop.api.max_retries = 0
    with pytest.raises(CampaignInterrupted):
        await submit_campaign(
            shop.api,
            shop.profile.keys,
            "acme",
            prepared,
            on_progress=crash_after_first_batch,
            relay_wait_s=0,  # no waiting for process A: the business turns to process B
        )
    # The business finishes through the surviving process: resubmitting the whole audience
    # is safe only for copies never stored, so it asks the relay what landed first.
    survivor = RelayAPI(b.url, "acme", shop.profile.keys)
    with psycopg.connect(pg_url) as conn:
        landed = {
            r[0]
            for r in conn.execute(
                "SELECT recipient FROM relay_mailbox WHERE campaign_id=%s", (prepared.report.id,)
            )
        }
    assert 1000 <= len(landed) < len(everyone)
    prepared.rows = [row for row in prepared.rows if row.handle not in landed]
    rest = await submit_campaign(survivor, shop.profile.keys, "acme", prepared)
    assert rest.accepted == len(everyone) - len(landed)
    for person in real:
        assert len((await person.sync()).stored) == 1
    with psycopg.connect(pg_url) as conn:
        per_person = conn.execute(
            "SELECT count(*), count(DISTINCT recipient) FROM relay_mailbox WHERE campaign_id=%s",
            (prepared.report.id,),
        ).fetchone()
    assert per_person == (len(everyone), len(everyone))
    ledger_is_exact(pg_url, "acme")
    await survivor.aclose()


async def test_two_processes_racing_for_the_last_budget_never_overspend(
    relays, pg_url, make_account
):
    a, b = relays
    handles = [h for h, _ in seed_persons(pg_url, 400)]
    shop = await make_account("acme", a, business=True)
    await shop.api.top_up(PRICE_IT * 500)  # room for 500 copies; two campaigns of 400 each
    template = await shop.api.register_template(OFFER)
    first = await prepare_campaign(
        shop.api, "acme", template, audience(handles), budget=PRICE_IT * 400
    )
    second = await prepare_campaign(
        shop.api, "acme", template, audience(handles), budget=PRICE_IT * 400
    )
    via_b = RelayAPI(b.url, "acme", shop.profile.keys)
    runs = await asyncio.gather(
        submit_campaign(shop.api, shop.profile.keys, "acme", first),
        submit_campaign(via_b, shop.profile.keys, "acme", second),
    )
    await via_b.aclose()
    assert sum(r.accepted for r in runs) == 500
    assert sum(r.rejected["insufficient_balance"] for r in runs) == 300
    budget = await shop.api.budget()
    assert budget.available == 0 and budget.reserved + budget.spent == 500 * PRICE_IT
    ledger_is_exact(pg_url, "acme")


async def test_scheduled_copies_fire_exactly_once_across_processes(relays, pg_url, make_account):
    a, b = relays
    handles = [h for h, _ in seed_persons(pg_url, 600)]
    shop = await make_account("acme", a, business=True)
    await shop.api.top_up(10**9)
    template = await shop.api.register_template(OFFER)
    blocked = await make_account("blocker", b)
    await blocked.api.set_choice("blocked", "acme", True)
    send_at = int(time.time() * 1000) + 1500  # both processes' dispatchers race for these
    run = await run_campaign(
        shop.api,
        shop.profile.keys,
        "acme",
        template,
        audience([*handles, "blocker"]),
        budget=10**9,
        send_at=send_at,
    )
    assert run.accepted == 601
    for _ in range(100):  # the relay's state, polled: up to 20 s
        status = await shop.api.campaign(run.campaign.id)
        if not status.scheduled:
            break
        await asyncio.sleep(0.2)
    assert (status.sent, status.spend) == (601, 601 * PRICE_IT)  # charged once, not twice
    with psycopg.connect(pg_url) as conn:
        states = dict(
            conn.execute(
                "SELECT state, count(*) FROM relay_mailbox WHERE campaign_id=%s GROUP BY state",
                (run.campaign.id,),
            ).fetchall()
        )
    assert states == {"pending": 600, "refused": 1}
    ledger_is_exact(pg_url, "acme")


async def test_campaigns_created_at_once_on_two_processes_make_one_chained_key_log(
    relays, pg_url, make_account
):
    a, b = relays
    shop = await make_account("acme", a, business=True)
    await shop.api.top_up(10_000_000)
    template = await shop.api.register_template(OFFER)
    via_b = RelayAPI(b.url, "acme", shop.profile.keys)
    create = CampaignCreate(template_id=template.id, budget=1_000, audience_size=1)
    await asyncio.gather(
        *(api.create_campaign(create) for _ in range(10) for api in (shop.api, via_b))
    )
    await via_b.aclose()
    # Appends took turns: one entry per campaign, each chained to the one before it.
    async with httpx.AsyncClient() as http:
        from_a = KeyLog.model_validate_json((await http.get(a.url + KEY_LOG_PATH)).content)
        from_b = KeyLog.model_validate_json((await http.get(b.url + KEY_LOG_PATH)).content)
    assert from_a == from_b  # one log, one head key, the same signed bytes from either
    assert len(verify_log(from_a).keys) == 20
