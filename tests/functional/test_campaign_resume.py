"""A campaign whose relay is killed (-9) in the middle of its submission: the run stops,
resumable, and resuming it after the relay is back gives every recipient exactly one copy,
charged once. Before the journal, the only way on was a new campaign: thousands of people got
it twice and the business paid twice."""

import asyncio
import sqlite3
from pathlib import Path

import pytest

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import CampaignInterrupted, resume_campaign, run_campaign
from client.business.journal import CampaignJournal
from client.messenger import Messenger
from sealpost.benchmarks.seeding import seed_persons
from sealpost.relay_process import RelayProcess
from shared.templates import TemplateDraft

PEOPLE = 2500
OFFER = TemplateDraft(
    name="offer", category="marketing", body="Hi {{name}}, 20% off today.", examples={"name": "Ana"}
)


def _copies(db: Path, campaign_id: str) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(
            conn.execute(
                "SELECT recipient, count(*) FROM relay_mailbox WHERE campaign_id = ? "
                "GROUP BY recipient",
                (campaign_id,),
            ).fetchall()
        )


def _money(db: Path, business: str) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(
            conn.execute(
                "SELECT kind, sum(amount) FROM relay_ledger WHERE business = ? GROUP BY kind",
                (business,),
            ).fetchall()
        )


async def test_a_campaign_cut_by_a_relay_crash_resumes_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "relay.db"
    url = f"sqlite:///{db}"
    options = {"auto_migrate": "true", "rate_burst": "100000", "rate_per_s": "100000"}
    first = RelayProcess(url, tmp_path / "relay1.log", **options)
    people = await asyncio.to_thread(seed_persons, url, PEOPLE)
    shop = await Messenger.create_account(
        tmp_path / "home", "shop", "acme", first.url, business=True
    )
    journal = CampaignJournal(shop.profile.dir / "campaigns.db")
    try:
        await shop.api.top_up(10**10)
        template = await shop.api.register_template(OFFER)
        price = (await shop.api.pricing()).countries["+39"].marketing
        audience = Audience(
            rows=[
                AudienceRow(line=i + 2, handle=h, variables={"name": f"N{i}"})
                for i, (h, _) in enumerate(people)
            ]
        )

        def crash_midway(done: int, total: int) -> None:
            if done == 1000:  # two of three batches stored: the relay dies, no goodbye
                first.kill()

        with pytest.raises(CampaignInterrupted) as cut:
            await run_campaign(
                shop.api,
                shop.profile.keys,
                "acme",
                template,
                audience,
                budget=10**9,
                on_progress=crash_midway,
                journal=journal,
                relay_wait_s=2,
            )
        campaign_id = cut.value.run.campaign.id
        assert cut.value.run.submitted == 1000 and cut.value.total == PEOPLE
        assert journal.unfinished() == [campaign_id]
        stored_before = _copies(db, campaign_id)
        assert 0 < len(stored_before) < PEOPLE

        # The relay is back on the same address; the business resumes.
        second = RelayProcess(url, tmp_path / "relay2.log", port=first.port, **options)
        try:
            run = await resume_campaign(
                shop.api, shop.profile.keys, "acme", template, journal, campaign_id
            )
        finally:
            second.stop()
        assert run.duplicate >= 1000  # the journalled batches, answered as already held
        copies = _copies(db, campaign_id)
        assert len(copies) == PEOPLE and set(copies.values()) == {1}  # each person once
        assert journal.unfinished() == []
        status = run.campaign
        assert status.accepted == PEOPLE and status.sent == PEOPLE
        # Charged once per person, not per attempt.
        assert _money(db, "acme")["charge"] == status.spend == PEOPLE * price
    finally:
        journal.close()
        await shop.aclose()
        if first._proc.poll() is None:
            first.stop()


def _pg_copies(url: str, campaign_id: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return dict(
            conn.execute(
                "SELECT recipient, count(*) FROM relay_mailbox WHERE campaign_id = %s "
                "GROUP BY recipient",
                (campaign_id,),
            ).fetchall()
        )


async def test_with_two_relays_the_console_goes_on_through_the_other_when_one_dies(
    tmp_path: Path, pg_url: str
) -> None:
    """Two relays over one PostgreSQL; the business's profile knows both. The one taking the
    submission is killed (-9) midway: the console carries on through the other, with no
    resume needed, and every person holds one copy, charged once."""
    options = {"rate_burst": "100000", "rate_per_s": "100000"}
    first = RelayProcess(pg_url, tmp_path / "relay1.log", **options)
    second = RelayProcess(pg_url, tmp_path / "relay2.log", **options)
    people = await asyncio.to_thread(seed_persons, pg_url, 1500)
    shop = await Messenger.create_account(
        tmp_path / "home", "shop", "acme", first.url, business=True, other_relays=[second.url]
    )
    try:
        await shop.api.top_up(10**10)
        template = await shop.api.register_template(OFFER)
        audience = Audience(
            rows=[
                AudienceRow(line=i + 2, handle=h, variables={"name": f"N{i}"})
                for i, (h, _) in enumerate(people)
            ]
        )

        def crash_midway(done: int, total: int) -> None:
            if done < total and first._proc.poll() is None:  # after the first batch
                first.kill()

        run = await run_campaign(
            shop.api,
            shop.profile.keys,
            "acme",
            template,
            audience,
            budget=10**9,
            on_progress=crash_midway,
            relay_wait_s=5,
        )
        assert first._proc.poll() is not None  # it did die midway
        assert shop.api.base_url == second.url  # and the console moved to the other
        assert (run.submitted, run.accepted + run.duplicate) == (1500, 1500)
        copies = await asyncio.to_thread(_pg_copies, pg_url, run.campaign.id)
        assert len(copies) == 1500 and set(copies.values()) == {1}
        price = (await shop.api.pricing()).countries["+39"].marketing
        assert run.campaign.accepted == 1500 and run.campaign.spend == 1500 * price
    finally:
        await shop.aclose()
        second.stop()
        if first._proc.poll() is None:
            first.stop()


async def test_a_campaign_short_of_its_audience_and_idle_says_interrupted(
    sqlite_url: str, make_account
) -> None:
    """What the relay says of a campaign whose submission stopped part way (its console
    killed, its machine gone): `interrupted`, with the counts and the command that finishes
    it; not while copies are still coming, and not once they have all come."""
    from client.business.campaigns import PreparedCampaign, prepare_campaign, submit_campaign
    from server.clock import ManualClock
    from server.embedded import EmbeddedRelay
    from tests.conftest import relay_settings

    clock = ManualClock()
    with EmbeddedRelay(relay_settings(sqlite_url), clock=clock) as relay:
        shop = await make_account("acme", relay, business=True)
        await shop.api.top_up(10**9)
        template = await shop.api.register_template(OFFER)
        people = [await make_account(f"person{i}", relay) for i in range(5)]
        audience = Audience(
            rows=[
                AudienceRow(line=i + 2, handle=p.profile.handle, variables={"name": "N"})
                for i, p in enumerate(people)
            ]
        )
        prepared = await prepare_campaign(
            shop.api, "acme", template, audience, budget=10**8, send_at=clock.now_ms() + 3_600_000
        )

        async def submit(rows: slice):  # type: ignore[no-untyped-def]
            part = PreparedCampaign(
                template, prepared.rows[rows], prepared.box_keys, prepared.report, []
            )
            return await submit_campaign(shop.api, shop.profile.keys, "acme", part)

        await submit(slice(0, 2))
        cid = prepared.report.id
        assert (await shop.api.campaign(cid)).status == "scheduled"  # copies may still come
        clock.advance(61_000)
        cut = await shop.api.campaign(cid)
        assert cut.status == "interrupted"
        assert cut.figures_note == (
            f"interrupted: 2 of 5 copies accepted, none for a minute; finish it with "
            f"`sealpost business campaign resume {cid}` (or cancel it)"
        )
        await submit(slice(2, 5))
        clock.advance(61_000)
        assert (await shop.api.campaign(cid)).status == "scheduled"
