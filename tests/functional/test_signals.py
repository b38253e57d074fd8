"""Interaction signals end to end: blind tokens, one noisy anonymous report per campaign,
redemption counted once, debiased and thresholded estimates in the business's report."""

import json
import math

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import run_campaign
from client.relay_api import RelayError
from server.clock import ManualClock
from server.embedded import EmbeddedRelay
from server.signals import tally_of
from shared.api import CampaignCreate, TokenBatchRequest, TokenRequest
from shared.auth import AUTH_HEADERS, sign_request
from shared.encoding import b64encode
from shared.signals import REPORT_FIELDS, decode_report
from shared.templates import TemplateDraft
from shared.tokens import blind, new_token_input
from tests.conftest import relay_settings

OFFER = TemplateDraft(
    name="offer", category="marketing", body="Hi {{name}}, 20% off today.", examples={"name": "Ana"}
)


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def k5_relay(sqlite_url, clock):
    # Reports straight to the relay (the channel before the shuffler, now off by default):
    # what is tested here is redemption itself; tests/functional/test_shuffler.py covers the
    # shuffler in front of it.
    settings = relay_settings(sqlite_url, dispatch_interval_s=3600, allow_direct_signals=True)
    with EmbeddedRelay(settings, clock=clock) as relay:
        yield relay


def exact_tally(relay, campaign_id):
    """What the relay counted (never shown to the business as it is)."""
    with Session(relay.app.state.engine) as session:
        return tally_of(session, campaign_id)


async def published(relay, clock, shop, campaign_id):
    """The campaign's figures, once its publication time has come."""
    status = await shop.api.campaign(campaign_id)
    clock.advance(max(0, status.figures_at - clock.now_ms()))
    relay.app.state.dispatcher.run_once()
    status = await shop.api.campaign(campaign_id)
    assert status.figures is not None
    return status.figures


async def campaign_to(relay, make_account, n):
    shop = await make_account("acme", relay, business=True)
    await shop.api.top_up(10_000_000)
    template = await shop.api.register_template(OFFER)
    persons = [await make_account(f"person{i}", relay) for i in range(n)]
    audience = Audience(
        rows=[
            AudienceRow(line=i + 2, handle=p.profile.handle, variables={"name": f"N{i}"})
            for i, p in enumerate(persons)
        ]
    )
    run = await run_campaign(
        shop.api, shop.profile.keys, "acme", template, audience, budget=5_000_000
    )
    for person in persons:
        assert len((await person.sync()).stored) == 1  # stored, acked, token obtained
    return shop, persons, run.campaign.id


async def post_signals(relay, body=None, **kwargs):
    async with httpx.AsyncClient() as http:
        return await http.post(relay.url + "/v1/signals", json=body, **kwargs)


def anonymous_requests(person):
    return [e for e in person.ledger.entries() if e["url"].endswith("/v1/signals")]


async def test_reports_are_anonymous_counted_once_and_estimated(k5_relay, clock, make_account):
    shop, persons, campaign_id = await campaign_to(k5_relay, make_account, 8)
    for i, person in enumerate(persons):
        if i % 2:
            person.signals.record(campaign_id, "read")
        result = await person.signals.flush(now=2e10)  # past any random delay
        assert result is not None and result.counted == 1
        [entry] = anonymous_requests(person)
        # What crossed: only the declared report fields, no credential, handle or message id.
        assert not set(entry["headers"]) & set(AUTH_HEADERS)
        [raw] = entry["body"]["reports"]
        report = decode_report(raw.encode())
        assert tuple(json.loads(raw)) == tuple(sorted(REPORT_FIELDS))
        assert report.campaign_id == campaign_id
        for secret in (person.profile.handle, *(m.msg_id for m in person.store.messages())):
            assert secret not in raw
        budget = json.loads((person.profile.dir / "epsilon.json").read_text())
        assert math.isclose(sum(budget["spent"].values()), math.log(3), rel_tol=1e-9)

    assert exact_tally(k5_relay, campaign_id)[0] == 8

    # A replayed report (captured from the first person's request) is never counted again.
    replay = anonymous_requests(persons[0])[0]["body"]
    again = (await post_signals(k5_relay, replay)).json()
    assert again == {"counted": 0, "refused": {"0": "token_spent"}}
    assert exact_tally(k5_relay, campaign_id)[0] == 8
    # The business sees the count and estimates only with central noise, and intervals
    # that hold both noises (unclipped: they may reach below zero or above eight).
    figures = await published(k5_relay, clock, shop, campaign_id)
    assert figures.signal_reports.margin > 0
    for event in ("read", "clicked"):
        estimate = figures.interactions[event]
        assert estimate.low < estimate.value < estimate.high
        assert estimate.high - estimate.low > 8


async def test_forged_tokens_credentials_and_double_issue_are_refused(k5_relay, make_account):
    _, persons, _ = await campaign_to(k5_relay, make_account, 2)
    await persons[0].signals.flush(now=2e10)
    raw = anonymous_requests(persons[0])[0]["body"]["reports"][0]
    fields = json.loads(raw)
    forged = json.dumps(
        {**fields, "token_input": fields["token_output"][:44]},
        separators=(",", ":"),
        sort_keys=True,
    )
    answer = (await post_signals(k5_relay, {"reports": [forged, "{}"]})).json()
    assert answer["counted"] == 0
    assert set(answer["refused"].values()) <= {"bad_token", "invalid_report"}

    body = json.dumps({"reports": [raw]}).encode()
    headers = sign_request(persons[1].profile.keys.signing, "person1", "POST", "/v1/signals", body)
    refused = await post_signals(
        k5_relay, content=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "credentials_on_anonymous_channel"

    msg_id = persons[1].store.messages()[0].msg_id
    with pytest.raises(RelayError) as err:  # the person's client already took its one token
        await persons[1].api.request(
            "POST",
            "/v1/signals/tokens",
            TokenRequest(msg_id=msg_id, blinded_element="A" * 43 + "="),
        )
    assert err.value.code == "token_already_issued"
    with pytest.raises(RelayError) as err:  # someone else's message
        await persons[0].api.request(
            "POST",
            "/v1/signals/tokens",
            TokenRequest(msg_id=msg_id, blinded_element="A" * 43 + "="),
        )
    assert err.value.code == "unknown_message"


async def test_signals_off_spend_nothing_and_still_count(k5_relay, make_account):
    shop, persons, campaign_id = await campaign_to(k5_relay, make_account, 3)
    persons[0].signals.settings.enabled = False
    for person in persons:
        assert (await person.signals.flush(now=2e10)).counted == 1
    assert not (persons[0].profile.dir / "epsilon.json").exists()  # random bits cost nothing
    assert exact_tally(k5_relay, campaign_id)[0] == 3
    assert (await shop.api.campaign(campaign_id)).figures is None  # not yet due


def test_figures_that_could_never_fit_the_budget_are_refused(sqlite_url):
    with pytest.raises(ValueError, match="business_epsilon_30d"):
        relay_settings(sqlite_url, figures_epsilon_counts=0.6, figures_epsilon_interactions=0.6)


async def test_a_page_of_campaign_copies_takes_its_tokens_in_one_request(k5_relay, make_account):
    shop = await make_account("acme", k5_relay, business=True)
    await shop.api.top_up(10_000_000)
    offer = await shop.api.register_template(OFFER)
    later = await shop.api.register_template(OFFER.model_copy(update={"name": "later"}))
    person = await make_account("person0", k5_relay)
    rows = [AudienceRow(line=2, handle="person0", variables={"name": "N"})]
    campaigns = []
    for template in (offer, later):
        run = await run_campaign(
            shop.api, shop.profile.keys, "acme", template, Audience(rows=list(rows)), budget=10**6
        )
        campaigns.append(run.campaign.id)

    start = len(person.ledger.entries())
    assert len((await person.sync()).stored) == 2
    asked = [e for e in person.ledger.entries()[start:] if "/v1/signals/tokens" in e["url"]]
    assert [e["url"].rsplit("/v1/", 1)[1] for e in asked] == ["signals/tokens/batch"]
    assert len(asked[0]["body"]["tokens"]) == 2
    # Both tokens are real: each campaign's report is counted once (each in its own
    # request, at its own moment).
    result = await person.signals.flush_due(until=2e10)
    assert result is not None and result.counted == 2
    for campaign_id in campaigns:
        assert exact_tally(k5_relay, campaign_id)[0] == 1


async def test_a_batch_with_one_bad_copy_issues_nothing(k5_relay, make_account):
    shop = await make_account("acme", k5_relay, business=True)
    await shop.api.top_up(10_000_000)
    offer = await shop.api.register_template(OFFER)
    ana, bob = [await make_account(h, k5_relay) for h in ("ana00", "bob00")]
    rows = [
        AudienceRow(line=i + 2, handle=h, variables={"name": "N"})
        for i, h in enumerate(["ana00", "bob00"])
    ]
    await run_campaign(
        shop.api, shop.profile.keys, "acme", offer, Audience(rows=rows), budget=10**6
    )
    # Ana acks her copy by hand, so that no token was asked for it yet.
    [item] = (await ana.api.mailbox_page()).items
    await ana.api.ack([item.envelope.id])
    [bobs] = (await bob.api.mailbox_page()).items
    blinded = b64encode(blind(new_token_input())[1])  # a real blinded element
    batch = TokenBatchRequest(
        tokens=[
            TokenRequest(msg_id=item.envelope.id, blinded_element=blinded),
            TokenRequest(msg_id=bobs.envelope.id, blinded_element=blinded),  # not hers
        ]
    )
    with pytest.raises(RelayError) as err:
        await ana.api.request("POST", "/v1/signals/tokens/batch", batch)
    assert err.value.code == "unknown_message" and "tokens[1]" in err.value.message
    # Nothing was issued: her own copy's token is still hers to take, once.
    one = TokenRequest(msg_id=item.envelope.id, blinded_element=blinded)
    await ana.api.request("POST", "/v1/signals/tokens", one)
    other = b64encode(blind(new_token_input())[1])
    with pytest.raises(RelayError) as err:
        await ana.api.request(
            "POST",
            "/v1/signals/tokens",
            TokenRequest(msg_id=item.envelope.id, blinded_element=other),
        )
    assert err.value.code == "token_already_issued"


async def test_a_copy_the_relay_moves_into_another_campaign_is_quarantined(k5_relay, make_account):
    # A curious relay relabels one person's copy with a campaign of its choosing (one whose
    # figures or tokens single her out). The business signed the campaign id inside the seal:
    # the device sees the two disagree, keeps the copy in quarantine and asks no token.
    shop = await make_account("acme", k5_relay, business=True)
    await shop.api.top_up(10_000_000)
    template = await shop.api.register_template(OFFER)
    bob = await make_account("bob", k5_relay)
    rows = [AudienceRow(line=2, handle="bob", variables={"name": "Bob"})]
    run = await run_campaign(
        shop.api, shop.profile.keys, "acme", template, Audience(rows=rows), budget=10**6
    )
    decoy = await shop.api.create_campaign(
        CampaignCreate(template_id=template.id, budget=1_000, audience_size=1)
    )
    with Session(k5_relay.app.state.engine) as session:
        session.execute(
            text("UPDATE relay_mailbox SET campaign_id = :decoy WHERE campaign_id = :real"),
            {"decoy": decoy.id, "real": run.campaign.id},
        )
        session.commit()
    report = await bob.sync()
    assert [m.status for m in report.stored] == ["quarantined"]  # never shown as genuine
    [held] = report.quarantined
    assert held.quarantine_reason is not None and "campaign_mismatch" in held.quarantine_reason
    asked = [e for e in bob.ledger.entries() if "/v1/signals/tokens" in e["url"]]
    assert asked == []


async def test_a_token_request_retried_after_a_lost_answer_gets_its_token(k5_relay, make_account):
    # The relay issued the token, but the answer never reached the device (a timeout under
    # load): the client resends the same body, and must get its token, not a refusal.
    shop = await make_account("acme", k5_relay, business=True)
    await shop.api.top_up(1_000_000)
    template = await shop.api.register_template(OFFER)
    ann = await make_account("ann", k5_relay)
    audience = Audience(rows=[AudienceRow(line=2, handle="ann", variables={"name": "Ann"})])
    run = await run_campaign(shop.api, shop.profile.keys, "acme", template, audience, budget=10**5)

    async def not_yet(copies):  # type: ignore[no-untyped-def]
        pass  # the token is asked for by hand below

    ann.signals.on_delivered_many = not_yet  # type: ignore[method-assign]
    assert len((await ann.sync()).stored) == 1
    [msg] = ann.store.messages("acme")
    token_input = new_token_input()
    _, blinded = blind(token_input)
    body = TokenRequest(msg_id=msg.msg_id, blinded_element=b64encode(blinded))
    first = await ann.api.request("POST", "/v1/signals/tokens", body)
    again = await ann.api.request("POST", "/v1/signals/tokens", body)  # the answer was lost
    assert again["evaluated_element"] == first["evaluated_element"]
    assert again["campaign_id"] == run.campaign.id
    # A different blinded element for the same copy is a second token: still refused.
    _, other = blind(new_token_input())
    with pytest.raises(RelayError) as err:
        await ann.api.request(
            "POST",
            "/v1/signals/tokens",
            TokenRequest(msg_id=msg.msg_id, blinded_element=b64encode(other)),
        )
    assert err.value.code == "token_already_issued"


# --- what one person's reports can cost them, attacked ----------------------------------------

DAY_MS = 86_400_000


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


async def test_a_report_costs_one_stated_epsilon_of_at_most_ln_3(k5_relay, make_account):
    shop = await make_account("acme", k5_relay, business=True)
    await shop.api.top_up(1_000_000)
    template = await shop.api.register_template(OFFER)
    ann = await make_account("ann", k5_relay)
    campaign = await one_campaign(shop, template, ann, "one")
    # She read it and clicked: outcomes of one copy, which one report carries together.
    ann.signals.record(campaign, "read")
    ann.signals.record(campaign, "clicked")
    assert (await ann.signals.flush(now=2e10)).counted == 1
    assert spent(ann) <= math.log(3) + 1e-9
    [report] = sent_reports(ann)
    assert tuple(report) == tuple(sorted(REPORT_FIELDS))
    decode_report(json.dumps(report, separators=(",", ":"), sort_keys=True).encode())


async def test_a_business_cannot_buy_unbounded_epsilon_about_one_person(
    k5_relay, clock, make_account
):
    # The attack: a business sends one campaign a day, for as long as it likes, each one
    # buying a fresh report about the same person.
    shop = await make_account("acme", k5_relay, business=True)
    await shop.api.top_up(10_000_000)
    template = await shop.api.register_template(OFFER)
    ann = await make_account("ann", k5_relay)
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
