"""What one person's reports can cost them, attacked through a real relay: a report costs one
stated ε of at most ln 3, and a business that sends campaign after campaign cannot buy more
than a bounded ε about one person over the device's lifetime."""

import json
import math

import pytest

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import run_campaign
from server.clock import ManualClock
from server.embedded import EmbeddedRelay
from shared.signals import REPORT_FIELDS, decode_report
from shared.templates import TemplateDraft
from tests.conftest import relay_settings

DAY_MS = 86_400_000
OFFER = TemplateDraft(
    name="offer", category="marketing", body="Hi {{name}}, 20% off today.", examples={"name": "Ana"}
)


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def relay(sqlite_url, clock):
    settings = relay_settings(sqlite_url, dispatch_interval_s=3600, allow_direct_signals=True)
    with EmbeddedRelay(settings, clock=clock) as relay:
        yield relay


def spent(person) -> float:
    """Everything this device has spent on reports, from its own ledger."""
    budget = json.loads((person.profile.dir / "epsilon.json").read_text())
    return budget["lifetime_spent"]


def sent_reports(person) -> list[dict]:
    return [
        json.loads(raw)
        for e in person.ledger.entries()
        if e["url"].endswith("/v1/signals")
        for raw in e["body"]["reports"]
    ]


async def one_campaign(shop, template, person, name: str) -> str:
    audience = Audience(
        rows=[AudienceRow(line=2, handle=person.profile.handle, variables={"name": "Ana"})]
    )
    run = await run_campaign(
        shop.api, shop.profile.keys, "acme", template, audience, budget=100_000, name=name
    )
    assert len((await person.sync()).stored) == 1
    return run.campaign.id


async def test_a_report_costs_one_stated_epsilon_of_at_most_ln_3(relay, make_account):
    shop = await make_account("acme", relay, business=True)
    await shop.api.top_up(1_000_000)
    template = await shop.api.register_template(OFFER)
    ann = await make_account("ann", relay)
    campaign = await one_campaign(shop, template, ann, "one")
    # She read it and clicked: outcomes of one copy, which one report carries together.
    ann.signals.record(campaign, "read")
    ann.signals.record(campaign, "clicked")
    assert (await ann.signals.flush(now=2e10)).counted == 1
    assert spent(ann) <= math.log(3) + 1e-9
    [report] = sent_reports(ann)
    assert tuple(report) == tuple(sorted(REPORT_FIELDS))
    decode_report(json.dumps(report, separators=(",", ":"), sort_keys=True).encode())


async def test_a_business_cannot_buy_unbounded_epsilon_about_one_person(relay, clock, make_account):
    # The attack: a business sends one campaign a day, for as long as it likes, each one
    # buying a fresh report about the same person.
    shop = await make_account("acme", relay, business=True)
    await shop.api.top_up(10_000_000)
    template = await shop.api.register_template(OFFER)
    ann = await make_account("ann", relay)
    ann.signals.clock = lambda: clock.now_ms() / 1000
    costs = []
    for day in range(40):
        campaign = await one_campaign(shop, template, ann, f"day {day}")
        ann.signals.record(campaign, "read")
        before = spent(ann) if (ann.profile.dir / "epsilon.json").exists() else 0.0
        assert (await ann.signals.flush_due(until=clock.now_ms() / 1000 + 86_400)) is not None
        costs.append(spent(ann) - before)
        clock.advance(DAY_MS)
    assert sum(costs) <= 25 * math.log(3)
    cap = ann.signals.business_budget("acme").cap
    assert sum(costs) <= cap + 1e-9
    assert ann.signals.budget_summary()["by_business"] == {"acme": {"spent": cap, "cap": cap}}
    # Past the cap the report still leaves (its existence says nothing), and says nothing.
    assert costs[-1] == 0
    assert sent_reports(ann)[-1]["outcome"] == "no_signal"
