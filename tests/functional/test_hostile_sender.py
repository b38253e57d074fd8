"""A hostile sender against a real relay on loopback (issue: "A person's control holds against a
hostile sender"): the platform's own handles, the moderation desk, probing for accounts, and
floods of chat envelopes into one mailbox. Each attack is refused with a clear 4xx naming the
limit, and nothing already accepted is lost."""

import json

import httpx
import pytest
from sqlmodel import Session

from client.relay_api import RelayError
from server import reserved_handles
from server.embedded import EmbeddedRelay
from server.models import Account
from shared.api import RegisterAccount
from shared.encoding import b64decode
from shared.keys import AccountKeys, key_fingerprint
from shared.templates import Button, TemplateDraft
from tests.conftest import relay_settings
from tests.helpers import chat_envelopes, post_batch, signed


def register(relay: EmbeddedRelay, handle: str, keys: AccountKeys | None = None) -> httpx.Response:
    keys = keys or AccountKeys.generate()
    body = RegisterAccount(
        handle=handle,
        display_name=handle,
        country="+39",
        sign_key=keys.public.sign_b64,
        box_key=keys.public.box_b64,
    ).model_dump_json()
    return signed(relay.url, keys, handle, "POST", "/v1/accounts", body.encode())


RESERVED_LOOK_ALIKES = [
    "moderation",
    "admin",
    "support",
    "system",
    "security",
    "relay",
    "sealpost",
    "m0deration",
    "moderati0n",
    "moderation_desk",
    "official.support",
    "5upport",
    "adm1n",
    "sealpost-team",
    "securlty",
    "moderatoin",
]


def test_the_platforms_handles_and_their_look_alikes_are_refused(relay):
    # One relay for all of them, on each backend: the refusal is the relay's, not SQLite's.
    for handle in RESERVED_LOOK_ALIKES:
        answer = register(relay, handle)
        assert answer.status_code == 403, (handle, answer.text)
        assert answer.json()["error"]["code"] == "reserved_handle"
        assert "reserved" in answer.json()["error"]["message"]


def test_ordinary_handles_near_them_are_fine(relay):
    for handle in ["badminton", "sysadmin_fan", "relaying", "moderato", "anna"]:
        assert register(relay, handle).status_code == 201, handle


def test_only_the_operator_registers_the_desk(db_url):
    with EmbeddedRelay(relay_settings(db_url)) as relay:
        desk = AccountKeys.generate()
        assert register(relay, "moderation", desk).status_code == 403  # not even with its key
        reserved_handles.register(
            relay.app.state.engine,
            "moderation",
            "Moderation desk",
            desk.public.sign_b64,
            desk.public.box_b64,
        )
        with pytest.raises(reserved_handles.ReservedHandleError, match="already registered"):
            reserved_handles.register(
                relay.app.state.engine, "moderation", "x", desk.public.sign_b64, desk.public.box_b64
            )
        looked_up = signed(relay.url, desk, "moderation", "GET", "/v1/accounts/moderation")
        assert looked_up.json()["verified"] is True


async def test_a_report_is_never_sealed_to_an_unpinned_desk(relay, make_account, home):
    # A business (or anyone) holding @moderation would read who reported it. Here the relay
    # operator registered a desk, but the person's client has no pinned fingerprint for it, or
    # a wrong one: nothing is sent.
    desk = AccountKeys.generate()
    reserved_handles.register(
        relay.app.state.engine,
        "moderation",
        "Desk",
        desk.public.sign_b64,
        desk.public.box_b64,
    )
    bob = await make_account("bob", relay)
    sent_before = len(bob.ledger.entries())
    with pytest.raises(RelayError) as err:
        await bob.report("acme", [])
    assert err.value.code == "desk_not_pinned"
    # A wrong pin; and the desk's real signing key with a box key that is not its own (a
    # relay reading reports would swap only the key they are sealed to).
    other = AccountKeys.generate()
    for pin in (
        "00" * 32,
        key_fingerprint(desk.public.sign_b64, other.public.box_b64),
    ):
        bob.settings.moderation_key_fingerprint = pin
        with pytest.raises(RelayError) as err:
            await bob.report("acme", [])
        assert err.value.code == "desk_key_mismatch"
    assert not [e for e in bob.ledger.entries()[sent_before:] if "/v1/messages" in e["url"]]
    bob.settings.moderation_key_fingerprint = key_fingerprint(
        desk.public.sign_b64, desk.public.box_b64
    )
    report = await bob.report("acme", [])
    assert report.status in ("sent", "queued")


def test_an_unknown_account_and_a_bad_signature_answer_the_same(relay):
    real = AccountKeys.generate()
    assert register(relay, "alice", real).status_code == 201
    stranger = AccountKeys.generate()
    answers = [
        signed(relay.url, stranger, handle, "GET", "/v1/accounts/alice")
        for handle in ("alice", "nobody")  # a real handle with a wrong key; no such account
    ]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json() == answers[1].json()


async def test_a_batch_of_chats_costs_one_token_per_envelope_and_a_recipient_has_a_limit(
    db_url, make_account
):
    settings = relay_settings(
        db_url, chat_rate_per_s=0.001, chat_burst=50, chats_per_recipient_per_hour=30
    )
    with EmbeddedRelay(settings) as relay:
        mallory = await make_account("mallory", relay)
        bob = await make_account("bob", relay)
        envelopes = chat_envelopes(mallory, bob.profile.keys, "bob", 60)

        def batch(items: list[str]) -> httpx.Response:
            return post_batch(relay, mallory, items)

        first = batch(envelopes[:20])
        assert first.status_code == 200 and first.json()["accepted"] == 20
        # 20 more would pass the per-request limit, but not the 30 an hour one sender may
        # send one person: the first 10 are taken, the rest refused by name.
        second = batch(envelopes[20:40]).json()
        assert second["accepted"] == 10
        assert {r["error"]["code"] for r in second["results"][10:]} == {"too_many_to_recipient"}
        # The chat bucket (50, no refill to speak of) is spent: a request over it is a 429.
        third = batch(envelopes[40:60])
        assert third.status_code == 429
        assert third.json()["error"]["code"] == "rate_limited"
        assert "envelope" in third.json()["error"]["message"]
        # Nothing accepted was lost: bob gets exactly the 30.
        report = await bob.sync()
        assert len(report.stored) == 30
        assert json.loads(first.text)["rejected"] == 0


def test_a_blocked_sender_cannot_register_again_and_again(db_url):
    settings = relay_settings(db_url, registrations_per_hour=1, registration_burst=3)
    with EmbeddedRelay(settings) as relay:
        answers = [register(relay, f"spammer{i}") for i in range(5)]
        assert [a.status_code for a in answers] == [201, 201, 201, 429, 429]
        refused = answers[3].json()["error"]
        assert refused["code"] == "registration_limited" and "retry after" in refused["message"]
        assert int(answers[3].headers["Retry-After"]) > 60
        # A refused registration created nothing: the handle is still free for later.
        with Session(relay.app.state.engine) as session:
            assert session.get(Account, "spammer3") is None
            assert session.get(Account, "spammer2") is not None


async def test_a_quick_reply_that_reads_like_the_apps_stop_control_is_refused(relay, make_account):
    # Pressed, such a button would send a chat to the business (opening its service window)
    # while the person thinks they stopped its promotions.
    shop = await make_account("acme", relay, business=True)
    for text in ("Stop promoti\u043ens", "Unsubscribe", "B1ock", "Rep0rt"):
        draft = TemplateDraft(
            name="update",
            category="utility",
            body="Your order has shipped.",
            buttons=[Button(type="quick_reply", text=text)],
        )
        with pytest.raises(RelayError) as err:
            await shop.api.register_template(draft)
        assert err.value.code == "invalid_template", text
        assert "reads like the app's own" in err.value.message


async def test_the_flood_limit_says_nothing_about_blocks_or_reading(db_url, make_account):
    # A limit that counted unread mail would answer differently for a person who blocked the
    # sender (blocked chats are never waiting), one who is offline (they pile up) and one who
    # reads (they drain): a sender could tell which by flooding. The answers must match.
    settings = relay_settings(db_url, chats_per_recipient_per_hour=5)
    with EmbeddedRelay(settings) as relay:
        mallory = await make_account("mallory", relay)
        blocker, offline, reader = [await make_account(h, relay) for h in ("ann", "ben", "cyd")]
        await blocker.api.set_choice("blocked", "mallory", True)
        answers = {}
        for person in (blocker, offline, reader):
            results = []
            for envelope in chat_envelopes(mallory, person.profile.keys, person.profile.handle, 8):
                [result] = post_batch(relay, mallory, [envelope]).json()["results"]
                results.append((result["status"], (result["error"] or {}).get("code")))
                if person is reader:
                    await reader.sync()  # reads as they come
            answers[person.profile.handle] = results
        assert answers["ann"] == answers["ben"] == answers["cyd"]
        assert answers["ann"][-1] == ("rejected", "too_many_to_recipient")


async def test_a_mailbox_holds_so_much_and_says_so(db_url, make_account):
    # Many senders the person accepted could still fill a mailbox while she is away: the relay
    # keeps a quota of pending envelopes and bytes per mailbox, and says so by name.
    settings = relay_settings(db_url, mailbox_max_pending=5)
    with EmbeddedRelay(settings) as relay:
        bob = await make_account("bob", relay)
        friends = [await make_account(h, relay) for h in ("ann", "cyd")]
        mallory = await make_account("mallory", relay)
        await bob.api.set_choice("blocked", "mallory", True)
        answers = []
        for sender in (*friends, *friends):
            for envelope in chat_envelopes(sender, bob.profile.keys, "bob", 2):
                [result] = post_batch(relay, sender, [envelope]).json()["results"]
                answers.append((result["status"], (result["error"] or {}).get("code")))
        assert answers[:5] == [("accepted", None)] * 5
        assert set(answers[5:]) == {("rejected", "mailbox_full")}
        # A sender bob blocked is told the same as everyone else: nothing about the block.
        [envelope] = chat_envelopes(mallory, bob.profile.keys, "bob", 1)
        refused = post_batch(relay, mallory, [envelope]).json()["results"][0]["error"]
        assert refused["code"] == "mailbox_full"
        assert "bob" in refused["message"] and "5" in refused["message"]
        # Nothing accepted was lost; once bob has caught up there is room again.
        assert len((await bob.sync()).stored) == 5
        [envelope] = chat_envelopes(friends[0], bob.profile.keys, "bob", 1)
        assert post_batch(relay, friends[0], [envelope]).json()["accepted"] == 1


async def test_a_mailbox_holds_so_many_bytes_and_says_so(db_url, make_account):
    # A few large messages fill a mailbox by bytes long before its count of envelopes.
    settings = relay_settings(db_url, mailbox_max_pending_bytes=65_536)
    with EmbeddedRelay(settings) as relay:
        bob = await make_account("bob", relay)
        ann = await make_account("ann", relay)
        await bob.accept_request("ann")
        big = chat_envelopes(ann, bob.profile.keys, "bob", 5, text="x" * 15_000)
        assert {len(b64decode(json.loads(e)["ciphertext"])) for e in big} == {16_384}
        answers = []
        for envelope in big:  # one at a time, then all in one batch once she has caught up
            [result] = post_batch(relay, ann, [envelope]).json()["results"]
            answers.append((result["status"], (result["error"] or {}).get("code")))
        assert answers == [("accepted", None)] * 4 + [("rejected", "mailbox_full")]
        assert "65,536 bytes" in result["error"]["message"]
        assert len((await bob.sync()).stored) == 4
        again = chat_envelopes(ann, bob.profile.keys, "bob", 5, text="x" * 15_000)
        batch = post_batch(relay, ann, again).json()["results"]
        assert [r["status"] for r in batch] == ["accepted"] * 4 + ["rejected"]
