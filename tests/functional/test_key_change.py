"""A contact's key changes: the relay (or anyone with its database) swaps the keys the directory
gives for a handle, to read what is sealed to it or to sign messages as it (issue #16: "Contacts'
keys are trusted on first use with no safety numbers and no warning when they change").

Real relay on loopback, real clients. The attacker writes new keys into ``relay_account`` and
drops the relay's in-process account cache, then signs requests (and messages) as the victim.
What must hold (DESIGN: keys are pinned on first use, a change is shown to the person):
messages signed by the new key are held in quarantine as ``key_changed``, never shown as
genuine; the person sees the change (safety numbers differ) and accepts it, or not; nothing is
sealed to the new key before they do; a verified mark does not survive the change.
"""

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from client.ledger import PrivacyLedger
from client.messenger import KeyChangedError, Messenger
from client.relay_api import RelayAPI
from shared.api import CampaignCreate
from shared.envelope import ChatContent, ChatPayload, TemplateContent, TemplatePayload
from shared.identifiers import new_message_id
from shared.keys import AccountKeys
from shared.safety_numbers import Identity, safety_number
from shared.seal import seal_envelope
from shared.templates import TemplateDraft
from tests.helpers import readable_by, run_cli, send_as, swap_keys


async def acquainted(alice: Messenger, bob: Messenger) -> None:
    """Alice and Bob write to each other once: each pins the other's real keys."""
    await alice.send_text("bob", "hi bob")
    await bob.sync()
    await bob.send_text("alice", "hi alice")
    await alice.sync()


async def test_a_swapped_key_is_held_shown_and_never_sealed_to(relay, make_account):
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    await acquainted(alice, bob)
    # Both devices show the same safety number; Bob compared it and marked it verified.
    number = bob.safety_number(await bob.contact("alice"))
    assert number == alice.safety_number(await alice.contact("bob"))
    assert bob.mark_verified("alice").safety_verified

    # Waiting in Bob's mailbox when the keys are swapped: signed by alice's real key.
    await alice.send_text("bob", "sent before the swap")
    mallory = swap_keys(relay, "alice")
    forged = await send_as(relay, "alice", mallory, bob, "new bank details: IBAN XX00 0000")

    # Before: quarantined as "bad_signature", like line noise, with nothing to tell Bob that
    # alice's key changed, nothing to compare and no way to accept a real change.
    earlier, held = (await bob.sync()).stored
    assert (earlier.text, earlier.status) == ("sent before the swap", "verified")
    assert (held.msg_id, held.status, held.quarantine_reason) == (
        forged,
        "quarantined",
        "key_changed",
    )
    assert held.text is None and "safety number changed" in (held.quarantine_detail or "")
    contact = bob.store.contact("alice")
    assert contact is not None and contact.key_changed
    assert not contact.safety_verified  # the mark was for the old key
    new_number = bob.safety_number(contact, new=True)
    assert new_number != number
    assert bob.safety_number(contact) == number  # the pinned keys are still the ones in use
    assert [m.text for m in bob.store.messages("alice") if m.status != "quarantined"] == [
        "hi bob",
        "hi alice",
        "sent before the swap",
    ]

    # Sending asks first: nothing is stored, nothing is sealed to the new key.
    with pytest.raises(KeyChangedError) as refused:
        await bob.send_text("alice", "what's the new IBAN?")
    assert "safety number changed" in refused.value.message
    assert [m.text for m in bob.store.messages("alice")].count("what's the new IBAN?") == 0
    assert await readable_by(relay, "alice", mallory, bob) == []
    with pytest.raises(KeyChangedError):
        bob.mark_verified("alice")  # the number compared would be the old one

    # The person decides: accepting pins the new key and releases what it signed.
    released = await bob.accept_new_key("alice")
    assert [(m.msg_id, m.text, m.status) for m in released] == [
        (forged, "new bank details: IBAN XX00 0000", "verified")
    ]
    contact = bob.store.contact("alice")
    assert contact is not None and not contact.key_changed
    assert bob.safety_number(contact) == new_number
    await bob.send_text("alice", "sealed to the accepted key")
    assert await readable_by(relay, "alice", mallory, bob) == ["sealed to the accepted key"]


async def test_a_message_queued_before_the_change_waits_for_the_person(sqlite_relay, make_account):
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await acquainted(alice, bob)
    queued = bob.queue_text("alice", "typed while offline")
    mallory = swap_keys(sqlite_relay, "alice")
    changed = await bob.check_contact("alice")  # e.g. `sealpost contact verify`
    assert changed.key_changed

    report = await bob.flush_outbox()
    assert (report.sent, report.held) == ([], [queued.msg_id])
    assert bob.store_message(queued.msg_id).status == "queued"
    assert await readable_by(sqlite_relay, "alice", mallory, bob) == []

    await bob.accept_new_key("alice")
    assert (await bob.flush_outbox()).sent == [queued.msg_id]
    assert await readable_by(sqlite_relay, "alice", mallory, bob) == ["typed while offline"]


async def test_safety_numbers_expose_a_key_swapped_before_first_use(sqlite_relay, make_account):
    # Pinning cannot help a device that first looks alice up after the swap: Carol's client
    # trusts mallory's keys as alice's (what succeeded before, and still does on first use).
    # Comparing safety numbers is what exposes it: Carol's differs from alice's own.
    alice = await make_account("alice", sqlite_relay)
    carol = await make_account("carol", sqlite_relay)
    await alice.contact("carol")
    mallory = swap_keys(sqlite_relay, "alice")
    await send_as(sqlite_relay, "alice", mallory, carol, "hello from alice")
    [message] = (await carol.sync()).stored
    assert message.status == "verified"  # trust on first use, by definition
    on_carols_device = carol.safety_number(await carol.contact("alice"))
    on_alices_device = alice.safety_number(await alice.contact("carol"))
    assert on_carols_device != on_alices_device
    assert on_alices_device == safety_number(alice.identity(), carol.identity())
    as_carol_sees_alice = Identity("alice", mallory.public.sign_b64, mallory.public.box_b64)
    assert on_carols_device == safety_number(carol.identity(), as_carol_sees_alice)


async def test_a_badly_signed_message_costs_at_most_one_directory_check(sqlite_relay, make_account):
    # Looking up the sender's keys again on a bad signature is what finds a change; a sender
    # sending garbage signatures must not make the person spend a lookup per message.
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await acquainted(alice, bob)

    def lookups() -> int:
        return sum(e["url"].endswith("/v1/accounts/alice") for e in bob.ledger.entries())

    before = lookups()
    # Sent with alice's real request key, signed inside with a random one.
    for _ in range(2):
        payload = ChatPayload(
            id=new_message_id(),
            sender="alice",
            recipient="bob",
            sent_at=int(time.time() * 1000),
            content=ChatContent(text="garbage"),
        )
        await alice.api.send(
            seal_envelope(payload, AccountKeys.generate(), bob.profile.keys.public.box)
        )
        stored = (await bob.sync()).stored
        assert [(m.status, m.quarantine_reason) for m in stored] == [
            ("quarantined", "bad_signature")
        ]
    assert lookups() - before == 1
    assert not bob.store.contact("alice").key_changed  # type: ignore[union-attr]


async def sealpost(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The CLI in this process, on a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(run_cli, home, *args, check=check)


async def test_the_cli_shows_the_number_refuses_to_send_and_accepts(
    sqlite_relay, make_account, home
):
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await alice.send_text("bob", "hi bob")
    # From here on, Bob uses the CLI (his client object only lends its public keys).
    await sealpost(home, "inbox", "--profile", "bob")
    shown = (await sealpost(home, "contact", "verify", "--profile", "bob", "alice")).stdout
    number = alice.safety_number(await alice.contact("bob"))
    assert " ".join(number[i : i + 5] for i in range(0, 20, 5)) in shown
    assert "Not verified" in shown and "--mark-verified" in shown
    marked = await sealpost(
        home, "contact", "verify", "--profile", "bob", "alice", "--mark-verified"
    )
    assert "Verified: you compared it" in marked.stdout

    mallory = swap_keys(sqlite_relay, "alice")
    await send_as(sqlite_relay, "alice", mallory, bob, "it's me, new phone")
    inbox = (await sealpost(home, "inbox", "--profile", "bob")).stdout
    assert "safety number changed — compare it before trusting new messages" in inbox
    assert "QUARANTINED, could not verify (key_changed)" in inbox
    assert "new phone" not in inbox

    refused = await sealpost(home, "send", "--profile", "bob", "--to", "alice", "ok", check=False)
    assert refused.returncode == 1
    assert "safety number changed" in refused.stderr
    assert "sealpost contact accept --profile bob alice" in refused.stderr
    assert await readable_by(sqlite_relay, "alice", mallory, bob) == []

    data = json.loads(
        (await sealpost(home, "contact", "verify", "--profile", "bob", "alice", "--json")).stdout
    )
    assert data["key_changed"] and not data["verified"]
    assert data["safety_number"] == number and data["new_safety_number"] != number
    warned = (await sealpost(home, "contact", "verify", "--profile", "bob", "alice")).stdout
    assert "WARNING" in warned and "sealpost contact accept --profile bob alice" in warned

    accepted = await sealpost(home, "contact", "accept", "--profile", "bob", "alice", "--json")
    result = json.loads(accepted.stdout)
    assert result["accepted"] and len(result["released"]) == 1
    assert result["safety_number"] == data["new_safety_number"]
    inbox = json.loads((await sealpost(home, "inbox", "--profile", "bob", "--json")).stdout)
    [convo] = inbox["conversations"]
    assert not convo["key_changed"]
    assert [m["text"] for m in convo["messages"]] == ["hi bob", "it's me, new phone"]
    await sealpost(home, "send", "--profile", "bob", "--to", "alice", "ok")
    assert await readable_by(sqlite_relay, "alice", mallory, bob) == ["ok"]


SHIPPING = TemplateDraft(
    name="shipping_update",
    category="utility",
    body="Hi {{name}}, your order {{order}} has shipped.",
    examples={"name": "Ana", "order": "A-1001"},
)


async def test_a_business_message_signed_by_the_new_key_is_released_rendered(
    sqlite_relay, make_account
):
    # The business case of the attack: "ACME" writes with a swapped key. Held like a chat;
    # once accepted, rendered from its template with its label, as on arrival.
    shop = await make_account("acme", sqlite_relay, business=True, display_name="ACME Shoes")
    await shop.api.top_up(10_000_000)
    template = await shop.api.register_template(SHIPPING)
    bob = await make_account("bob", sqlite_relay)
    await bob.contact("acme")
    mallory = swap_keys(sqlite_relay, "acme")
    async with RelayAPI(sqlite_relay.url, "acme", mallory, PrivacyLedger(None)) as api:
        campaign = await api.create_campaign(
            CampaignCreate(template_id=template.id, budget=1_000_000, audience_size=1)
        )
        payload = TemplatePayload(
            id=new_message_id(),
            sender="acme",
            recipient="bob",
            sent_at=int(time.time() * 1000),
            content=TemplateContent(
                template_id=template.id,
                template_hash=template.hash,
                variables={"name": "Bob", "order": "A-7"},
                campaign_id=campaign.id,
            ),
        )
        await api.send(
            seal_envelope(
                payload,
                mallory,
                bob.profile.keys.public.box,
                category="utility",
                template_id=template.id,
                campaign_id=campaign.id,
            )
        )
    sqlite_relay.app.state.dispatcher.run_once()
    [held] = (await bob.sync()).stored
    assert (held.status, held.quarantine_reason, held.text) == ("quarantined", "key_changed", None)
    [shown] = await bob.accept_new_key("acme")
    assert (shown.msg_id, shown.status, shown.label) == (payload.id, "verified", "Utility")
    assert "your order A-7 has shipped" in (shown.text or "")
