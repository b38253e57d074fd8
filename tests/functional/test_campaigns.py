"""Marketing end to end on a real relay: templates, campaigns from a CSV, scheduling, money,
and the choices people make."""

import asyncio
import json
from pathlib import Path

import pytest

from client.business.audience import AudienceError, read_audience
from client.business.campaigns import prepare_campaign, run_campaign, submit_campaign
from client.relay_api import RelayError
from server.clock import ManualClock
from server.embedded import EmbeddedRelay
from shared.api import CampaignCreate, SetLevel
from shared.identifiers import new_campaign_id
from shared.templates import Button, TemplateDraft, variable_names
from tests.conftest import relay_settings
from tests.helpers import relay_storage_bytes

HOUR = 3_600_000

OFFER = TemplateDraft(
    name="spring_offer",
    category="marketing",
    header="Hello {{name}}",
    body="Hi {{name}}, your code {{code}} takes 20% off everything until Sunday.",
    footer="ACME Shoes",
    buttons=[
        Button(type="url", text="Shop now", url="https://acme.example/shop"),
        Button(type="copy_code", text="Copy code"),
    ],
    examples={"name": "Ana", "code": "SPRING20"},
)
SHIPPING = TemplateDraft(
    name="shipping_update",
    category="utility",
    body="Hi {{name}}, your order {{order}} has shipped.",
    examples={"name": "Ana", "order": "A-1001"},
)


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def mrelay(db_url, clock):
    """A relay on each backend whose business clock the test moves by hand."""
    with EmbeddedRelay(relay_settings(db_url, dispatch_interval_s=0.05), clock=clock) as relay:
        yield relay


async def people(make_account, relay, n, prefix="p", country="+39"):
    return [await make_account(f"{prefix}{i:03d}", relay, country=country) for i in range(n)]


def write_csv(path: Path, rows: list[tuple[str, ...]], header=("handle", "name", "code")) -> Path:
    path.write_text("\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n")
    return path


async def launch(shop, template, csv: Path, budget: int, **kwargs):
    audience = read_audience(csv, variable_names(template.template))
    return await run_campaign(
        shop.api,
        shop.profile.keys,
        shop.profile.handle,
        template,
        audience,
        budget=budget,
        **kwargs,
    )


async def settle(relay, predicate):
    """Run the dispatcher until ``predicate()`` holds; the clock does not move meanwhile."""
    async with asyncio.timeout(10):
        while True:
            relay.app.state.dispatcher.run_once()
            if await predicate():
                return
            await asyncio.sleep(0.05)


async def test_campaign_from_csv_arrives_personalised_and_labelled(mrelay, make_account, tmp_path):
    shop = await make_account("acme", mrelay, business=True, display_name="ACME Shoes")
    await shop.api.top_up(100_000_000)
    template = await shop.api.register_template(OFFER)
    assert template.category == "marketing"
    assert template.template.buttons[-1].text == "Stop promotions"
    persons = await people(make_account, mrelay, 12)
    csv = write_csv(
        tmp_path / "audience.csv",
        [(p.profile.handle, f"Name{i}", f"CODE{i:04d}") for i, p in enumerate(persons)],
    )
    run = await launch(shop, template, csv, budget=10_000_000)
    assert run.accepted == 12 and not run.rejected
    for i, person in enumerate(persons):
        report = await person.sync()
        [message] = report.stored
        assert message.status == "verified" and message.label == "Marketing"
        assert f"Hi Name{i}, your code CODE{i:04d} takes 20% off" in message.text
        assert message.category == "marketing"
    status = await shop.api.campaign(run.campaign.id)
    # Charged when sent, whatever happens next; the figures about people come later.
    assert (status.status, status.sent, status.spend) == ("sent", 12, 12 * 69_100)
    assert status.figures is None and "due at" in status.figures_note
    budget = await shop.api.budget()
    assert budget.available + budget.reserved == budget.topped_up - budget.spent
    assert budget.spent == 12 * 69_100
    assert budget.privacy.campaigns_left == 5


async def test_choices_refuse_and_are_charged_like_deliveries_then_rebated(
    mrelay, make_account, clock, tmp_path
):
    shop = await make_account("acme", mrelay, business=True)
    await shop.api.top_up(100_000_000)
    offer = await shop.api.register_template(OFFER)
    blocker, stopper, none_level, capped, ok = await people(make_account, mrelay, 5)
    await blocker.api.set_choice("blocked", "acme", True)
    await stopper.api.set_choice("promotions-stopped", "acme", True)
    await none_level.api.set_level(SetLevel(level="none"))
    everyone = [blocker, stopper, none_level, capped, ok]
    csv = write_csv(tmp_path / "a.csv", [(p.profile.handle, "N", "C") for p in everyone])
    # The daily cap is 2: capped gets two campaigns first, then the third is refused.
    for _ in range(2):
        solo = write_csv(tmp_path / "solo.csv", [(capped.profile.handle, "N", "C")])
        await launch(shop, offer, solo, budget=1_000_000)
    await settle(mrelay, lambda: _count(capped, 2))
    assert len((await capped.sync()).stored) == 2
    run = await launch(shop, offer, csv, budget=10_000_000)
    await settle(mrelay, lambda: _released(shop, run.campaign.id, 5))
    assert [len((await p.sync()).stored) for p in everyone] == [0, 0, 0, 0, 1]
    status = await shop.api.campaign(run.campaign.id)
    # Refused copies are charged like delivered ones: nothing the business sees tells them
    # apart until the figures are published, with noise, and settle one rebate.
    assert (status.sent, status.spend, status.refunded) == (5, 5 * 69_100, 0)
    clock.advance(status.figures_at - clock.now_ms())
    mrelay.app.state.dispatcher.run_once()
    status = await shop.api.campaign(run.campaign.id)
    assert status.status == "done" and status.figures is not None
    figures = status.figures
    assert set(figures.refused_by_reason) == {
        "blocked",
        "stopped_promotions",
        "marketing_level",
        "daily_cap",
        "message_request",
    }
    assert figures.refused.margin > 0 and figures.epsilon == pytest.approx(0.2)
    assert set(figures.interactions) >= {"read", "clicked"}
    budget = await shop.api.budget()
    rebates = [
        line
        for line in budget.ledger
        if line.kind == "rebate" and line.campaign_id == run.campaign.id
    ]
    assert sum(line.amount for line in rebates) == status.refunded == figures.rebate
    assert status.spend + status.refunded == 5 * 69_100
    assert budget.available + budget.reserved + budget.spent == budget.topped_up
    again = await shop.api.campaign(run.campaign.id)
    assert again.figures == figures  # published once: reading again averages nothing away

    # Utility still reaches the person who stopped promotions, but not the one who blocked.
    shipping = await shop.api.register_template(SHIPPING)
    csv2 = write_csv(
        tmp_path / "u.csv",
        [(blocker.profile.handle, "N", "A1"), (stopper.profile.handle, "N", "A2")],
        header=("handle", "name", "order"),
    )
    run2 = await launch(shop, shipping, csv2, budget=1_000_000)
    await settle(mrelay, lambda: _released(shop, run2.campaign.id, 2))
    assert len((await blocker.sync()).stored) == 0
    [utility] = (await stopper.sync()).stored
    assert utility.label == "Utility" and "order A2 has shipped" in utility.text


async def _count(person, n):
    return len((await person.api.mailbox_page()).items) >= n


async def _released(shop, campaign_id, n):
    status = await shop.api.campaign(campaign_id)
    return status.scheduled == 0 and status.sent >= n


async def test_scheduled_campaign_waits_then_cancel_refunds(mrelay, make_account, clock, tmp_path):
    shop = await make_account("acme", mrelay, business=True)
    await shop.api.top_up(10_000_000)
    offer = await shop.api.register_template(OFFER)
    a, b = await people(make_account, mrelay, 2)
    csv = write_csv(
        tmp_path / "a.csv", [(a.profile.handle, "A", "X"), (b.profile.handle, "B", "Y")]
    )
    later = clock.now_ms() + 2 * HOUR
    run = await launch(shop, offer, csv, budget=1_000_000, send_at=later)
    mrelay.app.state.dispatcher.run_once()
    assert (await a.sync()).stored == []
    status = await shop.api.campaign(run.campaign.id)
    assert (status.status, status.scheduled, status.reserved) == ("scheduled", 2, 2 * 69_100)
    clock.advance(2 * HOUR)
    await settle(mrelay, lambda: _count(a, 1))
    assert len((await a.sync()).stored) == 1

    run2 = await launch(shop, offer, csv, budget=1_000_000, send_at=clock.now_ms() + HOUR)
    before = await shop.api.budget()
    cancelled = await shop.api.cancel_campaign(run2.campaign.id)
    assert (cancelled.status, cancelled.cancelled, cancelled.reserved) == ("cancelled", 2, 0)
    after = await shop.api.budget()
    assert after.available == before.available + 2 * 69_100
    clock.advance(2 * HOUR)
    mrelay.app.state.dispatcher.run_once()
    # b gets the first campaign's copy only; the cancelled one never arrives.
    assert len((await b.sync()).stored) == 1
    assert (await b.sync()).stored == []


async def test_undelivered_messages_expire_and_are_rebated_with_the_figures(
    mrelay, make_account, clock, tmp_path
):
    shop = await make_account("acme", mrelay, business=True)
    await shop.api.top_up(10_000_000)
    offer = await shop.api.register_template(OFFER)
    [a] = await people(make_account, mrelay, 1)
    run = await launch(
        shop,
        offer,
        write_csv(tmp_path / "a.csv", [(a.profile.handle, "A", "X")]),
        budget=1_000_000,
        expires_in_days=1,
    )
    await settle(mrelay, lambda: _count(a, 1))
    clock.advance(25 * HOUR)
    mrelay.app.state.dispatcher.run_once()
    assert (await a.sync()).stored == []  # expired before a ever connected
    status = await shop.api.campaign(run.campaign.id)
    # The figures were due at the expiry (sooner than 72 h): published with its rebate.
    assert status.figures_at == status.expires_at and status.figures is not None
    assert (status.sent, status.reserved) == (1, 0)
    assert status.spend + status.refunded == 69_100 and status.refunded == status.figures.rebate


async def test_two_campaigns_racing_for_the_last_budget_never_overspend(
    mrelay, make_account, tmp_path
):
    shop = await make_account("acme", mrelay, business=True)
    price = 69_100
    await shop.api.top_up(price * 15)  # room for 15 copies; two campaigns of 10 each
    offer = await shop.api.register_template(OFFER)
    persons = await people(make_account, mrelay, 10)
    csv = write_csv(tmp_path / "a.csv", [(p.profile.handle, "N", "C") for p in persons])

    async def prepare():
        audience = read_audience(csv, variable_names(offer.template))
        return await prepare_campaign(shop.api, "acme", offer, audience, budget=price * 10)

    both = [await prepare(), await prepare()]  # each fits the balance on its own
    runs = await asyncio.gather(
        *(submit_campaign(shop.api, shop.profile.keys, "acme", p) for p in both)
    )
    assert sum(r.accepted for r in runs) == 15
    assert sum(r.rejected["insufficient_balance"] for r in runs) == 5
    budget = await shop.api.budget()
    assert budget.available == 0 and budget.reserved + budget.spent == 15 * price
    assert budget.available + budget.reserved + budget.spent == budget.topped_up


async def test_bad_input_gets_clear_errors(sqlite_relay, make_account, tmp_path):
    shop = await make_account("acme", sqlite_relay, business=True)
    with pytest.raises(RelayError) as err:
        await shop.api.register_template(OFFER.model_copy(update={"body": "x" * 1100}))
    assert err.value.code == "invalid_template" and "1,024" in err.value.message
    promo = await shop.api.register_template(
        SHIPPING.model_copy(
            update={"name": "sneaky", "body": "Hi {{name}}, use coupon {{order}} for a discount!"}
        )
    )
    assert promo.category == "marketing" and "coupon" in promo.reclassified_reason
    offer = await shop.api.register_template(OFFER)
    [a] = await people(make_account, sqlite_relay, 1)
    csv = write_csv(tmp_path / "a.csv", [(a.profile.handle, "A", "X")])
    with pytest.raises(RelayError) as err:
        await launch(shop, offer, csv, budget=1_000_000)
    assert err.value.code == "insufficient_balance"
    await shop.api.top_up(5_000_000)
    for kwargs, code in (
        ({"budget": -5}, "invalid_budget"),
        ({"budget": 1_000, "send_at": 1_000}, "send_time_past"),
        ({"budget": 1_000, "send_at": 2**63 - 1}, "send_time_far"),  # was a 500
    ):
        with pytest.raises(RelayError) as err:
            await launch(shop, offer, csv, **kwargs)
        assert err.value.code == code
    with pytest.raises(RelayError) as err:
        await shop.api.campaign("cmp_nope")
    assert err.value.code == "unknown_campaign"

    messy = write_csv(
        tmp_path / "m.csv",
        [
            (a.profile.handle, "A", "X"),
            ("Bad Handle!", "B", "Y"),
            (a.profile.handle, "A", "Z"),
            ("ghost", "G", ""),
        ],
    )
    audience = read_audience(messy, ["name", "code"])
    assert [line for line, _ in audience.problems] == [3, 4, 5]
    with pytest.raises(AudienceError, match="line 3"):
        await launch(shop, offer, messy, budget=1_000_000, policy="stop")
    run = await launch(shop, offer, messy, budget=1_000_000, policy="skip")
    assert run.accepted == 1 and [line for line, _ in run.skipped_rows] == [3, 4, 5]
    with pytest.raises(AudienceError, match="no valid rows"):
        await launch(shop, offer, write_csv(tmp_path / "e.csv", []), budget=1_000_000)


async def test_relay_never_sees_audience_names_or_codes(mrelay, make_account, tmp_path):
    shop = await make_account("acme", mrelay, business=True)
    await shop.api.top_up(10_000_000)
    offer = await shop.api.register_template(OFFER)
    persons = await people(make_account, mrelay, 3)
    canaries = [(p.profile.handle, f"Zorbulina{i}x", f"QX{i}K9Z") for i, p in enumerate(persons)]
    run = await launch(shop, offer, write_csv(tmp_path / "a.csv", canaries), budget=1_000_000)
    assert run.accepted == 3
    for p in persons:
        assert "Zorbulina" in (await p.sync()).stored[0].text
    stored = relay_storage_bytes(mrelay.settings.db)
    ledger = shop.ledger.path.read_bytes()
    for _, name, code in canaries:
        for needle in (name.encode(), code.encode()):
            assert needle not in stored
            assert needle not in ledger  # nor in any request the business sent


async def test_a_business_may_choose_its_campaign_id(sqlite_relay, make_account):
    # So that its console can seal copies while the audience is still being looked up.
    shop = await make_account("acme", sqlite_relay, business=True)
    rival = await make_account("brio", sqlite_relay, business=True)
    for business in (shop, rival):
        await business.api.top_up(5_000_000)
    offer = await shop.api.register_template(OFFER)
    rival_offer = await rival.api.register_template(OFFER)
    chosen = new_campaign_id()
    body = CampaignCreate(id=chosen, template_id=offer.id, budget=1_000, audience_size=1)
    assert (await shop.api.create_campaign(body)).id == chosen
    for business, template in ((shop, offer), (rival, rival_offer)):  # taken, whoever asks
        again = body.model_copy(update={"template_id": template.id})
        with pytest.raises(RelayError) as err:
            await business.api.create_campaign(again)
        assert (err.value.status, err.value.code) == (409, "campaign_exists")
    with pytest.raises(RelayError) as err:  # only the shape new_campaign_id makes
        raw = {"id": "cmp_../../x", "template_id": offer.id, "budget": 1, "audience_size": 1}
        await shop.api.request("POST", "/v1/campaigns", json.dumps(raw).encode())
    assert err.value.status == 422
    assert [c.id for c in (await shop.api.campaigns()).campaigns] == [chosen]


async def test_an_unknown_handle_under_stop_sends_nothing(sqlite_relay, make_account, tmp_path):
    # Copies are sealed while the audience is looked up; none may leave, and no campaign may
    # be opened, when the lookup finds a bad row and the business said "stop".
    shop = await make_account("acme", sqlite_relay, business=True)
    await shop.api.top_up(5_000_000)
    offer = await shop.api.register_template(OFFER)
    [a] = await people(make_account, sqlite_relay, 1)
    csv = write_csv(tmp_path / "g.csv", [(a.profile.handle, "A", "X"), ("ghost00", "G", "Y")])
    with pytest.raises(AudienceError, match="ghost00: no such account"):
        await launch(shop, offer, csv, budget=1_000_000, policy="stop")
    assert (await shop.api.campaigns()).campaigns == []
    assert (await a.api.mailbox_page()).items == []
    run = await launch(shop, offer, csv, budget=1_000_000, policy="skip")
    assert run.accepted == 1 and run.campaign.targeted == 1
    assert [why for _, why in run.skipped_rows] == ["ghost00: no such account on the relay"]


async def test_cancel_withdraws_copies_not_yet_delivered_and_the_business_cannot_tell(
    mrelay, make_account, clock, tmp_path
):
    """A cancelled campaign's copies still waiting in an offline person's mailbox are taken
    back: she never receives it. The business is told nothing it could tell her absence by:
    a campaign to a person who had read it and one to a person who was away read the same,
    and no money comes back for either at cancel (the rebate with the noisy figures covers
    undelivered copies, whoever they were)."""
    shop = await make_account("acme", mrelay, business=True)
    await shop.api.top_up(10_000_000)
    offer = await shop.api.register_template(OFFER)
    here, away = await people(make_account, mrelay, 2)
    runs = {}
    for person in (here, away):
        csv = write_csv(
            tmp_path / f"{person.profile.handle}.csv", [(person.profile.handle, "N", "C")]
        )
        runs[person.profile.handle] = await launch(shop, offer, csv, budget=1_000_000)
    assert len((await here.sync()).stored) == 1  # read, acked; `away` is offline
    seen = {}
    for handle, run in runs.items():
        before = await shop.api.budget()
        report = await shop.api.cancel_campaign(run.campaign.id)
        after = await shop.api.budget()
        seen[handle] = (
            report.model_dump(exclude={"id", "name"}),
            after.available - before.available,
            after.spent - before.spent,
        )
    assert seen[here.profile.handle] == seen[away.profile.handle]
    assert seen[away.profile.handle][1:] == (0, 0)
    clock.advance(HOUR)
    mrelay.app.state.dispatcher.run_once()
    assert (await away.sync()).stored == []  # withdrawn before she came back
