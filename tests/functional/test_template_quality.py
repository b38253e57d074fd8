"""A template people turn away from is paused, then paused longer, then disabled: read off its
campaigns' published figures only (no privacy spent beyond them), on a real relay."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import (
    PreparedCampaign,
    prepare_campaign,
    run_campaign,
    submit_campaign,
)
from client.relay_api import RelayError
from server.clock import ManualClock
from server.embedded import EmbeddedRelay
from server.quality import next_rating, unwelcome_share
from shared.api import CampaignCreate, CampaignFigures, Estimate, NoisyCount
from shared.templates import TemplateDraft
from tests.conftest import relay_settings
from tests.helpers import run_cli

HOUR_MS = 3_600_000
OFFER = TemplateDraft(
    name="offer", category="marketing", body="Hi {{name}}, 20% off today.", examples={"name": "Ana"}
)


def audience_of(people: list[Any]) -> Audience:
    """A campaign's audience: these people, each with a name."""
    return Audience(
        rows=[
            AudienceRow(line=i + 2, handle=p.profile.handle, variables={"name": "N"})
            for i, p in enumerate(people)
        ]
    )


def _figures(delivered: int, blocked: int, stopped: int, dismissed: float, margin: int):
    noisy = NoisyCount(value=delivered, margin=margin)
    return CampaignFigures(
        published_at=0,
        epsilon=0.2,
        delivered=noisy,
        refused=NoisyCount(value=blocked + stopped, margin=margin),
        refused_by_reason={
            "blocked": NoisyCount(value=blocked, margin=margin),
            "stopped_promotions": NoisyCount(value=stopped, margin=margin),
        },
        not_delivered=NoisyCount(value=0, margin=margin),
        signal_reports=NoisyCount(value=delivered, margin=margin),
        interactions={
            "dismissed": Estimate(value=dismissed, low=dismissed - 5, high=dismissed + 5)
        },
        rebate=0,
    )


def test_a_rating_moves_only_when_its_whole_interval_says_so():
    # Small campaigns: the noise (± 75 on every count) could hide anything; nothing moves.
    small = unwelcome_share([_figures(20, 10, 10, 5, margin=75)])
    assert small is not None and small.low == 0 and small.high == 1
    assert next_rating("medium", small) == "medium" and next_rating("high", small) == "high"
    # Thousands reached, most turned away: low, whatever it was.
    bad = unwelcome_share([_figures(2000, 900, 600, 300, margin=75)])
    assert bad is not None and bad.low > 0.2
    assert next_rating("high", bad) == "low"
    # Thousands reached, hardly anyone turned away: high; and back from low it goes by medium.
    good = unwelcome_share([_figures(5000, 10, 10, 20, margin=75)])
    assert good is not None and good.high < 0.05 and next_rating("low", good) == "high"


def clearer_figures(db: str, **extra: object):  # type: ignore[no-untyped-def]
    """Less noisy figures than the defaults (a larger ε, for tests only), so that sixty
    people are enough for a rating's interval to speak; three publications fit the budget."""
    defaults: dict[str, object] = {
        "figures_epsilon_counts": 1.0,
        "figures_epsilon_interactions": 2.3,
        "business_epsilon_30d": 10.0,
        "dispatch_interval_s": 3600,
    }
    return relay_settings(db, **(defaults | extra))


@pytest.fixture
def clock():
    return ManualClock()


async def test_a_template_people_turn_away_from_is_paused_then_disabled(
    sqlite_url, clock, make_account, home: Path
):
    settings = clearer_figures(sqlite_url)
    with EmbeddedRelay(settings, clock=clock) as relay:
        shop = await make_account("acme", relay, business=True)
        await shop.api.top_up(10**9)
        template = await shop.api.register_template(OFFER)
        people = [await make_account(f"p{i:02d}", relay) for i in range(60)]
        for person in people[:50]:  # most of them stopped its promotions
            await person.api.set_choice("promotions-stopped", "acme", True)
        audience = audience_of(people)

        async def campaign():  # type: ignore[no-untyped-def]
            run = await run_campaign(
                shop.api, shop.profile.keys, "acme", template, audience, budget=10**8
            )
            status = await shop.api.campaign(run.campaign.id)
            clock.advance(max(0, status.figures_at - clock.now_ms()))
            relay.app.state.dispatcher.run_once()
            assert (await shop.api.campaign(run.campaign.id)).figures is not None

        async def quality():  # type: ignore[no-untyped-def]
            [found] = (await shop.api.request("GET", "/v1/quality"))["templates"]
            return found

        assert (await quality())["note"].startswith("no published figures yet")
        await campaign()
        first = await quality()
        assert first["rating"] == "low" and first["lows"] == 1
        assert first["share_low"] > 0.2 and "stopped your promotions" in first["note"]
        with pytest.raises(RelayError) as err:
            await campaign()
        assert err.value.code == "template_paused" and "180 more minute(s)" in err.value.message
        said = await asyncio.to_thread(run_cli, home, "business", "--profile", "acme", "quality")
        assert said.stdout.startswith("your business: low; tier 1 of 5")
        assert "offer (tpl_" in said.stdout and "paused for 180 more minute(s)" in said.stdout

        clock.advance(3 * HOUR_MS)  # the first pause is over; it does no better
        await campaign()
        second = await quality()
        assert second["lows"] == 2 and second["paused_until"] == clock.now_ms() + 6 * HOUR_MS
        clock.advance(6 * HOUR_MS)
        await campaign()
        third = await quality()
        assert third["disabled"] and third["note"].startswith("disabled")
        clock.advance(100 * HOUR_MS)
        with pytest.raises(RelayError) as err:
            await campaign()
        assert err.value.code == "template_disabled"
        assert "Register a new template" in err.value.message


async def test_a_business_moves_up_a_tier_and_down_after_a_bad_week(
    sqlite_url, clock, make_account
):
    settings = clearer_figures(sqlite_url, marketing_tiers=True)
    with EmbeddedRelay(settings, clock=clock) as relay:
        shop = await make_account("acme", relay, business=True)
        await shop.api.top_up(10**9)
        template = await shop.api.register_template(OFFER)

        async def tier():  # type: ignore[no-untyped-def]
            return (await shop.api.request("GET", "/v1/quality"))["business"]

        async def publish(campaign_id: str) -> None:
            status = await shop.api.campaign(campaign_id)
            clock.advance(max(0, status.figures_at - clock.now_ms()))
            relay.app.state.dispatcher.run_once()

        start = await tier()
        assert (start["tier"], start["limit_24h"], start["enforced"]) == (1, 250, True)
        # A new business reaches 250 people a day at first: more is refused, and says why.
        with pytest.raises(RelayError) as err:
            await shop.api.create_campaign(
                CampaignCreate(template_id=template.id, budget=10**6, audience_size=300)
            )
        assert err.value.code == "tier_limit" and "250 people in 24 hours" in err.value.message
        # It uses more than half its limit and its figures show nothing wrong: a tier up.
        used = await shop.api.create_campaign(
            CampaignCreate(template_id=template.id, budget=10**6, audience_size=200)
        )
        await publish(used.id)
        up = await tier()
        assert (up["tier"], up["limit_24h"]) == (2, 1000) and "up:" in up["note"]

        # A bad week: most of the people its next campaign reaches had stopped its promotions.
        people = [await make_account(f"p{i:02d}", relay) for i in range(60)]
        for person in people[:50]:
            await person.api.set_choice("promotions-stopped", "acme", True)
        audience = audience_of(people)
        run = await run_campaign(
            shop.api, shop.profile.keys, "acme", template, audience, budget=10**8
        )
        await publish(run.campaign.id)
        down = await tier()
        assert (down["rating"], down["tier"], down["limit_24h"]) == ("low", 1, 250), (
            await shop.api.request("GET", "/v1/quality"),
            (await shop.api.campaign(run.campaign.id)).figures,
        )
        assert "down:" in down["note"]


async def test_a_paused_templates_scheduled_copies_wait_and_a_disabled_ones_are_refunded(
    db_url, clock, make_account
):
    """Copies scheduled before a template fell to low are held while it is paused (and
    released after), never slipped out during the pause; copies offered to a campaign of a
    paused template are refused; once the template is disabled, what is still scheduled is
    withdrawn and its money given back."""
    settings = clearer_figures(db_url, figures_epsilon_interactions=1.0)  # five publications
    with EmbeddedRelay(settings, clock=clock) as relay:
        shop = await make_account("acme", relay, business=True)
        await shop.api.top_up(10**9)
        template = await shop.api.register_template(OFFER)
        unhappy = [await make_account(f"p{i:02d}", relay) for i in range(60)]
        for person in unhappy[:50]:
            await person.api.set_choice("promotions-stopped", "acme", True)
        fans = [await make_account(f"fan{i}", relay) for i in range(4)]

        async def bad_campaign() -> int:
            run = await run_campaign(
                shop.api, shop.profile.keys, "acme", template, audience_of(unhappy), budget=10**8
            )
            return (await shop.api.campaign(run.campaign.id)).figures_at

        async def later_campaign(send_at: int, people) -> PreparedCampaign:  # type: ignore[no-untyped-def]
            return await prepare_campaign(
                shop.api, "acme", template, audience_of(people), budget=10**8, send_at=send_at
            )

        async def submit(prepared: PreparedCampaign, rows: slice):  # type: ignore[no-untyped-def]
            part = PreparedCampaign(
                template=prepared.template,
                rows=prepared.rows[rows],
                box_keys=prepared.box_keys,
                report=prepared.report,
                skipped_rows=[],
            )
            return await submit_campaign(shop.api, shop.profile.keys, "acme", part)

        figures_at = await bad_campaign()
        # Scheduled an hour after the bad campaign's figures: it falls due during the pause.
        held = await later_campaign(figures_at + HOUR_MS, fans)
        assert (await submit(held, slice(0, 3))).accepted == 3
        clock.advance(figures_at - clock.now_ms())
        relay.app.state.dispatcher.run_once()
        paused_until = (await shop.api.request("GET", "/v1/quality"))["templates"][0][
            "paused_until"
        ]
        assert paused_until == clock.now_ms() + 3 * HOUR_MS

        clock.advance(HOUR_MS)  # its send time: the template is paused
        relay.app.state.dispatcher.run_once()
        report = await shop.api.campaign(held.report.id)
        assert (report.status, report.scheduled, report.sent) == ("held", 3, 0)
        assert report.held_until == paused_until and report.spend == 0
        assert [len((await fan.sync()).stored) for fan in fans] == [0, 0, 0, 0]
        late = await submit(held, slice(3, 4))
        assert late.accepted == 0 and late.rejected == {"template_paused": 1}

        clock.advance(paused_until - clock.now_ms())  # the pause is over: out they go
        relay.app.state.dispatcher.run_once()
        report = await shop.api.campaign(held.report.id)
        assert (report.status, report.scheduled, report.sent) == ("sent", 0, 3)
        assert [len((await fan.sync()).stored) for fan in fans] == [1, 1, 1, 0]

        # Two more falls: the second pauses it again, the third disables it; a campaign
        # scheduled for next week is then withdrawn at once and refunded in full.
        next_week = await later_campaign(clock.now_ms() + 7 * 24 * HOUR_MS, fans)
        assert (await submit(next_week, slice(0, 4))).accepted == 4
        reserved = (await shop.api.campaign(next_week.report.id)).reserved
        assert reserved > 0
        for pause in (6 * HOUR_MS, 0):
            due = await bad_campaign()
            clock.advance(due - clock.now_ms())
            relay.app.state.dispatcher.run_once()
            clock.advance(pause)
        found = (await shop.api.request("GET", "/v1/quality"))["templates"][0]
        assert found["disabled"], found
        report = await shop.api.campaign(next_week.report.id)
        assert (report.status, report.scheduled, report.cancelled) == ("stopped", 0, 4)
        assert report.reserved == 0 and report.refunded == reserved
        assert report.stop_reason is not None and "disabled" in report.stop_reason
        clock.advance(8 * 24 * HOUR_MS)
        relay.app.state.dispatcher.run_once()
        assert [len((await fan.sync()).stored) for fan in fans] == [0, 0, 0, 0]


async def test_with_quality_off_a_low_template_is_rated_and_nothing_is_paused(
    sqlite_url, clock, make_account
):
    """The operator's switch (and `sealpost sim --no-quality`): ratings still move, nothing
    is paused, held or refused."""
    settings = clearer_figures(sqlite_url, template_quality=False)
    with EmbeddedRelay(settings, clock=clock) as relay:
        shop = await make_account("acme", relay, business=True)
        await shop.api.top_up(10**9)
        template = await shop.api.register_template(OFFER)
        people = [await make_account(f"p{i:02d}", relay) for i in range(60)]
        for person in people[:50]:
            await person.api.set_choice("promotions-stopped", "acme", True)
        audience = audience_of(people)
        for _ in range(2):
            run = await run_campaign(
                shop.api, shop.profile.keys, "acme", template, audience, budget=10**8
            )
            assert run.accepted == 60
            clock.advance((await shop.api.campaign(run.campaign.id)).figures_at - clock.now_ms())
            relay.app.state.dispatcher.run_once()
            [found] = (await shop.api.request("GET", "/v1/quality"))["templates"]
            assert (found["rating"], found["lows"], found["paused_until"]) == ("low", 0, None)
