"""Message requests against a real relay on loopback (issue 16, "Message requests"): the first
messages from someone the person never wrote to and never accepted arrive as a request, and
until the person accepts, the relay lets only a few of them through, and only so many new
strangers a day. Every refusal names the limit; what a sender sees never depends on whether
the person blocked them or simply has not answered."""

import httpx
import pytest

from client.messenger import Messenger
from server.embedded import EmbeddedRelay
from server.settings import RelaySettings
from shared.api import SetLevel, TemplateInfo
from shared.templates import TemplateDraft, VariableSpec
from tests.conftest import relay_settings
from tests.helpers import chat_envelopes, hostile_copy, post_batch

HOLD, PER_DAY = RelaySettings().request_hold, 5


def requests_relay(db_url: str) -> EmbeddedRelay:
    return EmbeddedRelay(relay_settings(db_url, request_hold=HOLD, requests_per_day=PER_DAY))


def outcomes(answer: httpx.Response) -> list[tuple[str, str | None]]:
    assert answer.status_code == 200, answer.text
    return [(r["status"], (r["error"] or {}).get("code")) for r in answer.json()["results"]]


async def flood(relay: EmbeddedRelay, sender: Messenger, person: Messenger, n: int) -> list:
    """``n`` chats, one request each, as a hostile client would send them."""
    envelopes = chat_envelopes(sender, person.profile.keys, person.profile.handle, n)
    return [outcomes(post_batch(relay, sender, [e]))[0] for e in envelopes]


async def test_a_stranger_gets_a_few_messages_through_until_the_person_accepts(
    db_url, make_account
):
    with requests_relay(db_url) as relay:
        mallory = await make_account("mallory", relay)
        alice = await make_account("alice", relay)
        answers = await flood(relay, mallory, alice, 10)
        assert answers[:HOLD] == [("accepted", None)] * HOLD
        assert set(answers[HOLD:]) == {("rejected", "request_pending")}
        # The refusal says what happened and what to do.
        refused = post_batch(
            relay, mallory, chat_envelopes(mallory, alice.profile.keys, "alice", 1)
        )
        message = refused.json()["results"][0]["error"]["message"]
        assert "alice" in message and "accept" in message and str(HOLD) in message

        # The person gets them apart, as a request: not in the unread count.
        report = await alice.sync()
        assert len(report.stored) == HOLD
        conversation = alice.store.conversation("mallory")
        assert conversation is not None and not conversation.accepted
        assert alice.store.requests() == [conversation]
        assert alice.store.unread_total() == 0

        # Accepted: the sender may write freely again (within the ordinary limits).
        await alice.accept_request("mallory")
        assert alice.store.conversation("mallory").accepted
        assert set(await flood(relay, mallory, alice, 5)) == {("accepted", None)}
        assert len((await alice.sync()).stored) == 5
        assert alice.store.unread_total() == HOLD + 5  # the request's three count now too


async def test_writing_first_is_accepting(db_url, make_account):
    with requests_relay(db_url) as relay:
        alice = await make_account("alice", relay)
        bob = await make_account("bob", relay)
        await alice.send_text("bob", "hi bob")
        assert set(await flood(relay, bob, alice, 6)) == {("accepted", None)}
        await alice.sync()
        assert alice.store.conversation("bob").accepted
        # ...but only for the one who wrote: bob has not accepted alice.
        await bob.sync()
        assert not bob.store.conversation("alice").accepted
        await bob.send_text("alice", "hello")  # replying accepts
        assert bob.store.conversation("alice").accepted


async def test_a_block_and_an_unanswered_request_look_the_same_to_the_sender(db_url, make_account):
    with requests_relay(db_url) as relay:
        mallory = await make_account("mallory", relay)
        ann = await make_account("ann", relay)
        ben = await make_account("ben", relay)
        await ann.api.set_choice("blocked", "mallory", True)
        assert await flood(relay, mallory, ann, 6) == await flood(relay, mallory, ben, 6)
        assert len((await ann.sync()).stored) == 0  # blocked: nothing reaches her
        assert len((await ben.sync()).stored) == HOLD


async def test_only_so_many_new_strangers_a_day(db_url, make_account):
    with requests_relay(db_url) as relay:
        alice = await make_account("alice", relay)
        carol = await make_account("carol", relay)
        await alice.send_text("carol", "hi")  # a contact, not a stranger
        puppets = [await make_account(f"puppet{i}", relay) for i in range(PER_DAY + 2)]
        answers = [(await flood(relay, p, alice, 1))[0] for p in puppets]
        assert answers[:PER_DAY] == [("accepted", None)] * PER_DAY
        assert set(answers[PER_DAY:]) == {("rejected", "too_many_requests")}
        # Strangers already let in may still use the rest of their few.
        assert (await flood(relay, puppets[0], alice, 1)) == [("accepted", None)]
        # Contacts are not strangers.
        assert set(await flood(relay, carol, alice, 3)) == {("accepted", None)}


UPDATE = TemplateDraft(
    name="order_update",
    category="utility",
    body="Order {{order}}: {{note}}",
    variables={"order": VariableSpec(type="code", max_length=12)},
    examples={"order": "A-1", "note": "on its way"},
)


async def one_copy(shop: Messenger, template: TemplateInfo, person: Messenger) -> None:
    """One copy in a campaign of its own, due now: the business is told nothing per person."""
    await hostile_copy(shop, template, person, {"order": "A-1", "note": "on its way"})


@pytest.mark.parametrize("accept_by", ["accepting", "writing"])
async def test_a_business_the_person_never_accepted_gets_a_few_copies_through(
    db_url, make_account, accept_by
):
    with requests_relay(db_url) as relay:
        shop = await make_account("acme", relay, business=True, display_name="ACME Shoes")
        await shop.api.top_up(100_000_000)
        template = await shop.api.register_template(UPDATE)
        alice = await make_account("alice", relay)
        for _ in range(HOLD + 3):
            await one_copy(shop, template, alice)
        assert len((await alice.sync()).stored) == HOLD
        assert alice.store.requests()[0].peer == "acme"
        if accept_by == "accepting":
            await alice.accept_request("acme")
        else:
            await alice.send_text("acme", "where is my order?")
        await one_copy(shop, template, alice)
        assert len((await alice.sync()).stored) == 1


async def test_a_business_posing_as_a_person_cannot_push_promotions_past_the_request(
    db_url, make_account
):
    # The finding: a business registered as a person sent 10 of 10 unlabelled promotions to a
    # person whose marketing level is "none". As a stranger it now gets three through, shown
    # apart as a request, and then nothing until she accepts.
    with requests_relay(db_url) as relay:
        fake = await make_account("deals4u", relay, display_name="Deals For You")
        alice = await make_account("alice", relay)
        await alice.api.set_level(SetLevel(level="none"))
        answers = await flood(relay, fake, alice, 10)
        assert answers.count(("accepted", None)) == HOLD
        await alice.sync()
        assert [c.peer for c in alice.store.requests()] == ["deals4u"]
        assert alice.store.unread_total() == 0


async def test_withdrawing_acceptance_makes_a_stranger_again(db_url, make_account):
    with requests_relay(db_url) as relay:
        mallory = await make_account("mallory", relay)
        alice = await make_account("alice", relay)
        await alice.accept_request("mallory")
        assert "mallory" in (await alice.api.preferences()).accepted
        prefs = await alice.api.set_choice("accepted", "mallory", False)
        assert "mallory" not in prefs.accepted
        answers = await flood(relay, mallory, alice, HOLD + 1)
        assert answers[-1] == ("rejected", "request_pending")
        assert answers.count(("accepted", None)) == HOLD
