"""The business's oracle, run against a real relay (docs/privacy-boundary.md, "What a business
sees").

A hostile business wants one bit about one person: did she stop its promotions and stay
offline (world 1), or take its marketing and read it (world 0)? It uses everything it may:
an audience of one, accounts of its own that stopped promotions (to difference against), a
second campaign, its reports before and after the figures are published, its balance and
every ledger line, charge and refund, and their timing.

The attack itself is ``sealpost/audit/attacks/business_oracle.py``, which ``sealpost audit``
also plays on its relay; here it runs on an embedded relay, on both database backends.

Two promises are tested:
- everything the business sees apart from the declared noisy release (a campaign's
  ``figures`` and the ``rebate`` ledger line derived from them) is the same in both worlds;
- over many independent trials, the business's best guess from the noisy release is right
  no more often than the stated ε allows (e^ε / (1 + e^ε), plus sampling slack).
"""

import pytest

from client.relay_api import RelayError
from sealpost.audit.attacks.business_oracle import (
    OFFER,
    RelayTime,
    business_oracle,
    exact_part,
    play,
    worlds_for,
)
from server.clock import ManualClock
from server.embedded import EmbeddedRelay
from shared.api import CampaignCreate
from shared.envelope import Envelope, TemplateContent, TemplatePayload
from shared.identifiers import new_message_id
from shared.seal import seal_envelope
from tests.conftest import relay_settings


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def oracle_relay(db_url, clock):
    with EmbeddedRelay(relay_settings(db_url, dispatch_interval_s=3600), clock=clock) as relay:
        yield relay


def relay_time(relay: EmbeddedRelay, clock: ManualClock) -> RelayTime:
    """The attack's hold on this embedded relay's clock and dispatcher."""

    async def release() -> None:
        relay.app.state.dispatcher.run_once()

    async def advance_to(ms: int) -> None:
        clock.advance(ms - clock.now_ms())
        relay.app.state.dispatcher.run_once()

    return RelayTime(now=clock.now_ms, release=release, advance_to=advance_to)


def accounts(make_account, relay):
    async def make(handle: str, **kwargs):
        return await make_account(handle, relay, **kwargs)

    return make


async def test_what_a_business_sees_apart_from_the_noisy_release_is_the_same_in_both_worlds(
    oracle_relay, clock, make_account
):
    zero, one = await play(
        accounts(make_account, oracle_relay), relay_time(oracle_relay, clock), [0, 1]
    )
    assert exact_part(zero.before) == exact_part(one.before)
    assert exact_part(zero.after) == exact_part(one.after)
    for report in one.after["reports"]:
        assert report["figures"] is not None  # published, with its noise


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_business_guesses_the_world_no_better_than_the_stated_epsilon(
    oracle_relay, clock, make_account
):
    trials = await play(
        accounts(make_account, oracle_relay),
        relay_time(oracle_relay, clock),
        worlds_for(40, 20261203),
    )
    check = business_oracle(trials)
    assert check.passed, (check.measured, check.violations)
    assert check.details["exact_part_accuracy"] == 0.5  # the exact part is one and the same
    assert 0 < check.details["epsilon_spent"] <= 1.0  # charged, within its budget


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
