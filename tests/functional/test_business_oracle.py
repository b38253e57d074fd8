"""The business's oracle, run against a real relay (docs/privacy-boundary.md, "What a business
sees").

A hostile business wants one bit about one person: did she stop its promotions and stay
offline (world 1), or take its marketing and read it (world 0)? It uses everything it may:
an audience of one, accounts of its own that stopped promotions (to difference against), a
second campaign, its reports before and after the figures are published, its balance and
every ledger line, charge and refund, and their timing.

Two promises are tested:
- everything the business sees apart from the declared noisy release (a campaign's
  ``figures`` and the ``rebate`` ledger line derived from them) is the same in both worlds;
- over many independent trials, the business's best guess from the noisy release is right
  no more often than the stated ε allows (e^ε / (1 + e^ε), plus sampling slack).
"""

import asyncio
import math
import random
import re
from typing import Any

import pytest

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import run_campaign
from client.relay_api import RelayError
from server.clock import ManualClock
from server.embedded import EmbeddedRelay
from shared.api import CampaignCreate
from shared.envelope import Envelope, TemplateContent, TemplatePayload
from shared.identifiers import new_message_id
from shared.seal import seal_envelope
from shared.templates import TemplateDraft
from tests.conftest import relay_settings

DAY = 86_400_000
OFFER = TemplateDraft(
    name="offer",
    category="marketing",
    body="Hi {{name}}, 20% off all week.",
    examples={"name": "Ana"},
)
PUPPETS = 2  # the business's own accounts, all of which stopped its promotions
# Keys whose values are times or ids: compared relative to the trial's start, or dropped.
_TIMES = {"at", "send_at", "expires_at", "created_at", "figures_at", "published_at", "renews_at"}
_IDS = {"id", "campaign_id", "template_id", "name"}
_WRITTEN_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def oracle_relay(db_url, clock):
    with EmbeddedRelay(relay_settings(db_url, dispatch_interval_s=3600), clock=clock) as relay:
        yield relay


async def _campaign(shop, template, handles: list[str]) -> str:
    audience = Audience(rows=[AudienceRow(i + 2, h, {"name": "N"}) for i, h in enumerate(handles)])
    run = await run_campaign(
        shop.api, shop.profile.keys, shop.profile.handle, template, audience, budget=10_000_000
    )
    assert run.accepted == len(handles)
    return run.campaign.id


async def _view(shop, campaign_ids: list[str], start: int) -> dict[str, Any]:
    """Everything the business can read, as it reads it."""
    reports = [await shop.api.request("GET", f"/v1/campaigns/{c}") for c in campaign_ids]
    budget = await shop.api.request("GET", "/v1/budget")
    listing = await shop.api.request("GET", "/v1/campaigns")
    return _relative({"reports": reports, "budget": budget, "list": listing}, start)


def _relative(value: Any, start: int) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in _IDS:
                continue
            if key in _TIMES and isinstance(item, int):
                out[key] = item - start
            elif isinstance(item, str):  # a time written in words: its offset stays in _TIMES
                out[key] = _WRITTEN_TIME.sub("<time>", item)
            else:
                out[key] = _relative(item, start)
        return out
    if isinstance(value, list):
        return [_relative(v, start) for v in value]
    return value


def _exact_part(view: dict[str, Any]) -> dict[str, Any]:
    """The view without the declared noisy release: what must not depend on the person."""
    reports = [{k: v for k, v in r.items() if k != "figures"} for r in view["reports"]]
    listed = [{k: v for k, v in r.items() if k != "figures"} for r in view["list"]["campaigns"]]
    budget = dict(view["budget"])
    rebates = sum(line["amount"] for line in budget["ledger"] if line["kind"] == "rebate")
    budget["ledger"] = [line for line in budget["ledger"] if line["kind"] != "rebate"]
    # A rebate moves money from spent back to available: undo it to compare the rest.
    budget["available"] -= rebates
    budget["spent"] += rebates
    reports = [{**r, "refunded": None, "spend": None} for r in reports]
    listed = [{**r, "refunded": None, "spend": None} for r in listed]
    return {"reports": reports, "budget": budget, "list": listed}


def _count(report: dict[str, Any], *path: str) -> float:
    """A figure from the published release (or, on a relay that publishes exact counts, the
    exact one): the adversary reads whatever is there."""
    figures = report.get("figures")
    if figures is None:  # an exact report: the attack this file guards against
        node: Any = report
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return float(node or 0)
    node = figures
    for key in path:
        node = node[key]
    return float(node["value"] if isinstance(node, dict) else node)


def _guess(before: dict[str, Any], after: dict[str, Any]) -> int:
    """The business's best single guess of the world from what it saw."""
    solo, padded = after["reports"]
    score = _count(solo, "refused") - _count(solo, "delivered")
    score += _count(padded, "refused") - PUPPETS - _count(padded, "delivered")
    # Exact refunds or a status that waits on a device: any of these gives the world away.
    ledger = after["budget"]["ledger"]
    refunded = sum(line["messages"] for line in ledger if line["note"] == "refused")
    score += 10 * (refunded - PUPPETS)
    if before["reports"][0].get("delivered_to_mailbox"):
        score += 10
    return 1 if score > 0 else 0


async def _trial(relay, clock, make_account, n: int, world: int) -> tuple[dict, dict]:
    start = clock.now_ms()
    shop = await make_account(f"shop{n:03d}", relay, business=True, display_name="Shop")
    await shop.api.top_up(100_000_000)
    template = await shop.api.register_template(OFFER)
    puppets = [await make_account(f"pup{n:03d}x{i}", relay) for i in range(PUPPETS)]
    for puppet in puppets:
        await puppet.api.set_choice("promotions-stopped", shop.profile.handle, True)
    target = await make_account(f"target{n:03d}", relay)
    if world == 1:
        await target.api.set_choice("promotions-stopped", shop.profile.handle, True)
    solo = await _campaign(shop, template, [target.profile.handle])
    padded = await _campaign(
        shop, template, [p.profile.handle for p in puppets] + [target.profile.handle]
    )
    relay.app.state.dispatcher.run_once()
    if world == 0:  # online: the device takes both copies and acks them
        report = await target.sync()
        assert len(report.stored) == 2
    before = await _view(shop, [solo, padded], start)
    clock.advance(8 * DAY)  # past the publication of every figure
    relay.app.state.dispatcher.run_once()
    after = await _view(shop, [solo, padded], start)
    clock.advance(31 * DAY)  # the next trial's business starts on a quiet calendar
    return before, after


async def test_what_a_business_sees_apart_from_the_noisy_release_is_the_same_in_both_worlds(
    oracle_relay, clock, make_account
):
    views = {w: await _trial(oracle_relay, clock, make_account, w, w) for w in (0, 1)}
    for moment in (0, 1):
        assert _exact_part(views[0][moment]) == _exact_part(views[1][moment])
    for report in views[1][1]["reports"]:
        assert report["figures"] is not None  # published, with its noise


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_business_guesses_the_world_no_better_than_the_stated_epsilon(
    oracle_relay, clock, make_account
):
    trials = 40
    rng = random.Random(20261203)
    right = 0
    epsilon = 0.0
    for n in range(trials):
        world = rng.randrange(2)
        before, after = await _trial(oracle_relay, clock, make_account, 100 + n, world)
        right += _guess(before, after) == world
        epsilon = max(epsilon, after["budget"].get("privacy", {}).get("spent_30d", 0.0))
        await asyncio.sleep(0)
    bound = math.exp(epsilon) / (1 + math.exp(epsilon))
    slack = 3 * math.sqrt(bound * (1 - bound) / trials)
    assert right / trials <= bound + slack, (right, trials, bound)
    assert 0 < epsilon <= 1.0  # the accountant charged this business, within its budget


async def test_a_campaign_cannot_weigh_one_person_twice(oracle_relay, make_account):
    # Two copies for one person would double her weight in the figures (and the noise is
    # scaled for one): the second is refused, in the same request or a later one.
    shop = await make_account("twice", oracle_relay, business=True)
    await shop.api.top_up(10_000_000)
    template = await shop.api.register_template(OFFER)
    target = await make_account("target", oracle_relay)
    campaign = await shop.api.create_campaign(
        CampaignCreate(template_id=template.id, budget=1_000_000, audience_size=3)
    )

    def copy() -> Envelope:
        payload = TemplatePayload(
            id=new_message_id(),
            sender=shop.profile.handle,
            recipient=target.profile.handle,
            sent_at=0,
            content=TemplateContent(
                template_id=template.id,
                template_hash=template.hash,
                variables={"name": "N"},
                campaign_id=campaign.id,
            ),
        )
        return seal_envelope(
            payload,
            shop.profile.keys,
            target.profile.keys.public.box,
            category="marketing",
            template_id=template.id,
            campaign_id=campaign.id,
        )

    first, second, third = copy(), copy(), copy()
    answer = await shop.api.send_batch_json([first.model_dump_json(), second.model_dump_json()])
    assert [r.status for r in answer.results] == ["accepted", "rejected"]
    assert answer.results[1].error is not None
    assert answer.results[1].error.code == "duplicate_recipient"
    with pytest.raises(RelayError) as err:
        await shop.api.send(third)
    assert (err.value.status, err.value.code) == (409, "duplicate_recipient")
    assert (await shop.api.send(first)).status == "duplicate"  # a resend is still a resend
