"""A business's quick reply against a real relay (issue 16, "Buttons"): pressed, it answers
the business, but it must not open the 24-hour window in which the business may send
free-form messages, unlabelled and past every marketing choice. Only what the person types
opens it."""

import pytest

from client.messenger import Messenger
from server.embedded import EmbeddedRelay
from tests.helpers import chat_envelopes, post_batch


async def business_writes(relay: EmbeddedRelay, shop: Messenger, person: Messenger) -> str:
    """The business's free-form message to ``person``: "accepted", or the refusal's code."""
    [envelope] = chat_envelopes(shop, person.profile.keys, person.profile.handle, 1)
    [result] = post_batch(relay, shop, [envelope]).json()["results"]
    return result["status"] if result["status"] != "rejected" else result["error"]["code"]


async def test_a_quick_reply_opens_no_window_for_free_form_marketing(relay, make_account):
    shop = await make_account("acme", relay, business=True, display_name="ACME Shoes")
    alice = await make_account("alice", relay)
    reply = await alice.send_quick_reply("acme", "Yes please")
    assert reply.status == "sent" and reply.category == "quick_reply"
    # The business gets the answer, marked as a button press rather than typed.
    [got] = (await shop.sync()).stored
    assert got.text == "Yes please" and got.category == "quick_reply"
    assert await business_writes(relay, shop, alice) == "outside_service_window"
    # A message the person types opens the window, as before.
    await alice.send_text("acme", "when does the sale end?")
    assert await business_writes(relay, shop, alice) == "accepted"


@pytest.mark.parametrize("sender_kind", ["business", "person"])
async def test_only_a_person_sends_a_quick_reply_and_only_to_a_business(
    relay, make_account, sender_kind
):
    shop = await make_account("acme", relay, business=True)
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    if sender_kind == "business":
        sender, to = shop, "alice"
        await alice.send_text("acme", "hi")  # a window, so only the category is wrong
    else:
        sender, to = alice, "bob"
    message = await sender.send_quick_reply(to, "Yes")
    assert message.status == "failed" and "quick reply" in (message.quarantine_detail or "")
    assert bob  # registered
